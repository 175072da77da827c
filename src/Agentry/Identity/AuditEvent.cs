using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>
/// One security event, appended and never changed: who did what to which target, from where, and how
/// it ended. Holds no secret (no password, token or key), only what an auditor needs to follow an action.
/// </summary>
public sealed class AuditEvent
{
    public const int ActionMaxLength = 64;
    public const int OutcomeMaxLength = 16;
    public const int ActorNameMaxLength = 254;
    public const int TargetMaxLength = 256;
    public const int IpMaxLength = 45;
    public const int UserAgentMaxLength = 512;
    public const int DetailMaxLength = 4000;

    /// <summary>UUIDv7 made from <see cref="At"/>, so id order and time order agree.</summary>
    public Guid Id { get; init; }
    public DateTime At { get; init; }

    /// <summary>One of <see cref="AuditActions"/>.</summary>
    public required string Action { get; init; }

    /// <summary>One of <see cref="AuditOutcomes"/>.</summary>
    public required string Outcome { get; init; }

    public Guid? ActorUserId { get; init; }
    public Guid? ActorKeyId { get; init; }

    /// <summary>The actor's email (or the email a failed sign-in gave), or an API key's prefix.</summary>
    public string? ActorName { get; init; }

    /// <summary>Not a foreign key: events outlive the workspaces and users they name.</summary>
    public Guid? WorkspaceId { get; init; }

    /// <summary>What was acted on, as <c>kind:id</c> (see <see cref="AuditTargets"/>).</summary>
    public string? Target { get; init; }

    public string? Ip { get; init; }
    public string? UserAgent { get; init; }

    /// <summary>A small JSON object with the particulars (a reason, the roles before and after), or null.</summary>
    public string? Detail { get; init; }
}

/// <summary>The audited actions, <c>subject.verb</c>; list filters take a prefix such as <c>signin.</c>.</summary>
public static class AuditActions
{
    public const string SignInSucceeded = "signin.succeeded";
    public const string SignInFailed = "signin.failed";
    public const string TokenRefreshed = "token.refreshed";
    public const string TokenReuseDetected = "token.reuse_detected";
    public const string TokenRevoked = "token.revoked";
    public const string ApiKeyCreated = "apikey.created";
    public const string ApiKeyRevoked = "apikey.revoked";
    public const string ServiceAccountCreated = "serviceaccount.created";
    public const string ServiceAccountDeleted = "serviceaccount.deleted";
    public const string MemberAdded = "member.added";
    public const string MemberRoleChanged = "member.role_changed";
    public const string MemberRemoved = "member.removed";
    public const string UserCreated = "user.created";
    public const string UserUpdated = "user.updated";
    public const string UserDisabled = "user.disabled";
    public const string UserDeleted = "user.deleted";
    public const string WorkspaceCreated = "workspace.created";
    public const string WorkspaceUpdated = "workspace.updated";
    public const string WorkspaceDeleted = "workspace.deleted";
    public const string AgentCreated = "agent.created";
    public const string AgentUpdated = "agent.updated";
    public const string AgentDeleted = "agent.deleted";
    public const string AgentImported = "agent.imported";
    public const string ScheduleCreated = "schedule.created";
    public const string ScheduleUpdated = "schedule.updated";
    public const string ScheduleDeleted = "schedule.deleted";
    public const string CollectionCreated = "collection.created";
    public const string CollectionUpdated = "collection.updated";
    public const string CollectionDeleted = "collection.deleted";
    public const string DocumentAdded = "document.added";
    public const string DocumentDeleted = "document.deleted";
    public const string PermissionDenied = "permission.denied";

    // Governed tool calls by agents (approvals and the allow-list).
    public const string ToolRefused = "tool.refused";
    public const string ApprovalApproved = "approval.approved";
    public const string ApprovalDenied = "approval.denied";
}

public static class AuditOutcomes
{
    public const string Success = "success";
    public const string Failure = "failure";
    public const string Denied = "denied";

    public static readonly string[] All = [Success, Failure, Denied];
}

/// <summary>How events name what they act on.</summary>
public static class AuditTargets
{
    public static string User(Guid id) => $"user:{id}";

    public static string Workspace(Guid id) => $"workspace:{id}";

    public static string ApiKey(Guid id) => $"apikey:{id}";

    public static string ServiceAccount(Guid id) => $"serviceaccount:{id}";

    public static string Agent(Guid id) => $"agent:{id}";

    public static string Schedule(Guid id) => $"schedule:{id}";

    public static string Collection(Guid id) => $"collection:{id}";

    public static string Document(Guid id) => $"document:{id}";

    public static string Task(Guid id) => $"task:{id}";

    public static string Approval(Guid id) => $"approval:{id}";
}

internal sealed class AuditEventConfiguration : IEntityTypeConfiguration<AuditEvent>
{
    public void Configure(EntityTypeBuilder<AuditEvent> audit)
    {
        audit.ToTable("audit_events");
        audit.HasKey(e => e.Id);
        audit.Property(e => e.Id).ValueGeneratedNever();
        audit.Property(e => e.Action).HasMaxLength(AuditEvent.ActionMaxLength);
        audit.Property(e => e.Outcome).HasMaxLength(AuditEvent.OutcomeMaxLength);
        audit.Property(e => e.ActorName).HasMaxLength(AuditEvent.ActorNameMaxLength);
        audit.Property(e => e.Target).HasMaxLength(AuditEvent.TargetMaxLength);
        audit.Property(e => e.Ip).HasMaxLength(AuditEvent.IpMaxLength);
        audit.Property(e => e.UserAgent).HasMaxLength(AuditEvent.UserAgentMaxLength);
        audit.Property(e => e.Detail).HasMaxLength(AuditEvent.DetailMaxLength);
        // The list is newest first, across everything or within one workspace, optionally by action.
        audit.HasIndex(e => new { e.At, e.Id });
        audit.HasIndex(e => new { e.WorkspaceId, e.At, e.Id });
        audit.HasIndex(e => e.Action);
    }
}
