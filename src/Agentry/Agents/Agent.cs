using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Agents;

/// <summary>
/// An agent as it is now. Every change also appends an <see cref="AgentVersion"/>; deleting only marks
/// it, so the tasks that ran with it keep their history.
/// </summary>
public sealed class Agent : INamedRow
{
    public const int NameMaxLength = 100;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public required string Name { get; set; }

    /// <summary>One of <see cref="AgentKinds.All"/>.</summary>
    public required string Kind { get; set; }

    /// <summary>The current <see cref="AgentDefinition"/> as JSON: one column on every provider, read and written whole.</summary>
    public required string Definition { get; set; }

    /// <summary>The number of the newest <see cref="AgentVersion"/>, starting at 1.</summary>
    public int Version { get; set; }

    public DateTime CreatedAt { get; init; }
    public DateTime UpdatedAt { get; set; }

    /// <summary>The user, API key or service account that created it.</summary>
    public Guid? CreatedBy { get; init; }

    public DateTime? DeletedAt { get; set; }
}

/// <summary>An agent exactly as it was after one change; never updated.</summary>
public sealed class AgentVersion
{
    public Guid AgentId { get; init; }
    public int Version { get; init; }
    public required string Name { get; init; }
    public required string Kind { get; init; }
    public required string Definition { get; init; }
    public DateTime CreatedAt { get; init; }
    public Guid? CreatedBy { get; init; }
}

public static class AgentKinds
{
    public const string Llm = "llm";
    public const string Tool = "tool";
    public const string Webhook = "webhook";

    public static readonly string[] All = [Llm, Tool, Webhook];
}

internal sealed class AgentConfiguration : IEntityTypeConfiguration<Agent>
{
    public void Configure(EntityTypeBuilder<Agent> agent)
    {
        agent.ToTable("agents");
        agent.HasKey(a => a.Id);
        agent.Property(a => a.Id).ValueGeneratedNever();
        agent.Property(a => a.Name).HasMaxLength(Agent.NameMaxLength);
        agent.Property(a => a.Kind).HasMaxLength(16);
        agent.HasOne<Workspace>().WithMany().HasForeignKey(a => a.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        // A deleted agent frees its name.
        agent.HasIndex(a => new { a.WorkspaceId, a.Name }).IsUnique().HasFilter("\"DeletedAt\" IS NULL");
        // Serves the workspace's list by creation (ids are UUIDv7); the name sort uses the index above.
        agent.HasIndex(a => new { a.WorkspaceId, a.Id });
    }
}

internal sealed class AgentVersionConfiguration : IEntityTypeConfiguration<AgentVersion>
{
    public void Configure(EntityTypeBuilder<AgentVersion> version)
    {
        version.ToTable("agent_versions");
        // Two concurrent changes cannot both become version N+1.
        version.HasKey(v => new { v.AgentId, v.Version });
        version.Property(v => v.Name).HasMaxLength(Agent.NameMaxLength);
        version.Property(v => v.Kind).HasMaxLength(16);
        version.HasOne<Agent>().WithMany().HasForeignKey(v => v.AgentId).OnDelete(DeleteBehavior.Cascade);
    }
}
