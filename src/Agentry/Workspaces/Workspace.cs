using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Workspaces;

/// <summary>The tenant: every other resource belongs to exactly one workspace.</summary>
public sealed class Workspace : Agentry.Data.INamedRow
{
    public const int NameMaxLength = 100;
    public const int SlugMaxLength = 64;
    public const int DescriptionMaxLength = 1000;

    public Guid Id { get; init; }
    public required string Name { get; set; }

    /// <summary>URL-safe unique handle, fixed at creation.</summary>
    public required string Slug { get; init; }

    public string? Description { get; set; }

    /// <summary>Tokens (prompt and completion) the workspace's model calls may use per UTC day; null for no limit.</summary>
    public long? DailyTokenBudget { get; set; }

    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }
}

internal sealed class WorkspaceConfiguration : IEntityTypeConfiguration<Workspace>
{
    public void Configure(EntityTypeBuilder<Workspace> workspace)
    {
        workspace.ToTable("workspaces");
        workspace.HasKey(w => w.Id);
        workspace.Property(w => w.Id).ValueGeneratedNever();
        workspace.Property(w => w.Name).HasMaxLength(Workspace.NameMaxLength);
        workspace.Property(w => w.Slug).HasMaxLength(Workspace.SlugMaxLength);
        workspace.Property(w => w.Description).HasMaxLength(Workspace.DescriptionMaxLength);
        workspace.HasIndex(w => w.Slug).IsUnique();
        // Serves the "name" sort of the list endpoint; the id sort uses the primary key.
        workspace.HasIndex(w => new { w.Name, w.Id });
    }
}
