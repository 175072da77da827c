using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>A user's role in one workspace.</summary>
public sealed class Membership
{
    public Guid WorkspaceId { get; init; }
    public Guid UserId { get; init; }
    public required string Role { get; set; }
    public DateTime CreatedAt { get; init; }
}

/// <summary>Workspace roles, strongest first.</summary>
public static class Roles
{
    public const string Owner = "owner";
    public const string Admin = "admin";
    public const string Member = "member";
    public const string Viewer = "viewer";

    public static readonly string[] All = [Owner, Admin, Member, Viewer];

    /// <summary>True when <paramref name="role"/> grants at least what <paramref name="required"/> does.</summary>
    public static bool Satisfies(string role, string required) =>
        Array.IndexOf(All, role) is var have and >= 0 && have <= Array.IndexOf(All, required);
}

internal sealed class MembershipConfiguration : IEntityTypeConfiguration<Membership>
{
    public void Configure(EntityTypeBuilder<Membership> membership)
    {
        membership.ToTable("memberships");
        membership.HasKey(m => new { m.WorkspaceId, m.UserId });
        membership.Property(m => m.Role).HasMaxLength(16);
        // "my workspaces" is looked up by user.
        membership.HasIndex(m => m.UserId);
        membership.HasOne<Workspace>().WithMany().HasForeignKey(m => m.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        membership.HasOne<User>().WithMany().HasForeignKey(m => m.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
