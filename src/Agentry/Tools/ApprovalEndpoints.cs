using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Tools;

/// <summary>A decision's optional reason; a denial's reason reaches the task (or the model) as "denied by &lt;person&gt;: &lt;reason&gt;".</summary>
public sealed record ApprovalDecisionRequest([property: StringLength(Approval.ReasonMaxLength)] string? Reason = null);

public sealed record ApprovalResponse(
    Guid Id, Guid TaskId, Guid AgentId, string Tool, JsonElement Arguments, string CallId, string Status, DateTime RequestedAt,
    Guid? DecidedBy, string? DecidedByName, DateTime? DecidedAt, string? Reason, int CallAttempts, bool CallCompleted);

public static class ApprovalEndpoints
{
    /// <summary>Approvals: the tool agent kind's handler, the gate handlers ask, and the endpoints people decide with.</summary>
    public static IHostApplicationBuilder AddApprovals(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApprovalGate>();
        builder.Services.AddSingleton<ITaskHandler, ToolTaskHandler>();
        return builder;
    }

    public static IEndpointRouteBuilder MapApprovals(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource("/api/v1/approvals", "Approvals");

        group.MapGet("/", ListAsync).WithName("ListApprovals").WithSummary("List the workspace's approvals, newest first, a page at a time")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetApproval").WithSummary("Get an approval")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPost("/{id:guid}/approve", ApproveAsync).WithName("ApproveToolCall")
            .WithSummary("Approve a held tool call (a signed-in person, member or above); its task continues and makes the call once")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesWriteProblems();
        group.MapPost("/{id:guid}/deny", DenyAsync).WithName("DenyToolCall")
            .WithSummary("Deny a held tool call (a signed-in person, member or above): a tool agent's task ends, an llm agent is told and goes on")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesWriteProblems();
        return endpoints;
    }

    internal static async Task<Results<Ok<Page<ApprovalResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, [FromQuery] string? status, [FromQuery] Guid? taskId, CurrentWorkspace workspace, AppDbContext db,
        CancellationToken ct)
    {
        if (page.Resolve(Paging.CreationSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        if (status is not null && !ApprovalStatus.All.Contains(status))
        {
            return Problem.Validation("status", $"Unknown status '{status}'. Allowed: {string.Join(", ", ApprovalStatus.All)}.");
        }
        var query = db.Approvals.AsNoTracking().Where(a => a.WorkspaceId == workspace.Id);
        if (status is not null)
        {
            query = query.Where(a => a.Status == status);
        }
        if (taskId is not null)
        {
            query = query.Where(a => a.TaskId == taskId);
        }
        return TypedResults.Ok(await query.CreationPageAsync(sort, after, page.Size, ToResponse, ct));
    }

    internal static async Task<Results<Ok<ApprovalResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var approval = await db.Approvals.AsNoTracking().FirstOrDefaultAsync(a => a.Id == id && a.WorkspaceId == workspace.Id, ct);
        return approval is null ? NotFound(id) : TypedResults.Ok(ToResponse(approval));
    }

    internal static Task<Results<Ok<ApprovalResponse>, ProblemHttpResult>> ApproveAsync(
        Guid id, ApprovalDecisionRequest? request, CurrentWorkspace workspace, Caller caller, AppDbContext db, TaskStore store, EventSignal events,
        AuditTrail audit, CancellationToken ct) =>
        DecideAsync(id, approve: true, request, new Decider(workspace.Id, caller, db, store, events, audit), ct);

    internal static Task<Results<Ok<ApprovalResponse>, ProblemHttpResult>> DenyAsync(
        Guid id, ApprovalDecisionRequest? request, CurrentWorkspace workspace, Caller caller, AppDbContext db, TaskStore store, EventSignal events,
        AuditTrail audit, CancellationToken ct) =>
        DecideAsync(id, approve: false, request, new Decider(workspace.Id, caller, db, store, events, audit), ct);

    /// <summary>Who decides in which workspace, and the services a decision writes with.</summary>
    private sealed record Decider(Guid WorkspaceId, Caller Caller, AppDbContext Db, TaskStore Store, EventSignal Events, AuditTrail Audit);

    /// <summary>
    /// Only a person decides: an API key or a service account acts for a program, and a held call exists precisely so a
    /// program cannot make it alone (not even the agent's own workspace's programs).
    /// </summary>
    private static async Task<Results<Ok<ApprovalResponse>, ProblemHttpResult>> DecideAsync(
        Guid id, bool approve, ApprovalDecisionRequest? request, Decider d, CancellationToken ct)
    {
        if (d.Caller.IsWorkspaceBound)
        {
            return Problem.Forbidden("Only a signed-in person can decide an approval; API keys and service accounts cannot.");
        }
        var reason = string.IsNullOrWhiteSpace(request?.Reason) ? null : request.Reason.Trim();
        var email = await d.Db.Users.AsNoTracking().Where(u => u.Id == d.Caller.UserId).Select(u => u.Email).FirstOrDefaultAsync(ct) ?? d.Caller.UserId.ToString();
        var (change, approval) = await d.Store.DecideAsync(d.WorkspaceId, id, new ApprovalDecision(approve, d.Caller.UserId, email, reason), ct);
        switch (change)
        {
            case ApprovalChange.NotFound:
                return NotFound(id);
            case ApprovalChange.AlreadyDecided:
                return Problem.Conflict("approval_decided", $"Approval {id} is already {approval!.Status}; a decision cannot be changed.");
            case ApprovalChange.TaskNotWaiting:
                return Problem.Conflict("task_not_waiting", $"The task of approval {id} is not waiting for it; nothing was decided.");
        }
        d.Events.Notify(approval!.TaskId);
        await d.Audit.RecordAsync(approve ? AuditActions.ApprovalApproved : AuditActions.ApprovalDenied, AuditOutcomes.Success, d.WorkspaceId,
            AuditTargets.Approval(id), new { taskId = approval.TaskId, tool = approval.Tool, reason });
        return TypedResults.Ok(ToResponse(approval));
    }

    private static ApprovalResponse ToResponse(Approval a) => new(
        a.Id, a.TaskId, a.AgentId, a.Tool, JsonSerializer.Deserialize<JsonElement>(a.Arguments), a.CallId, a.Status, a.RequestedAt,
        a.DecidedBy, a.DecidedByName, a.DecidedAt, a.Reason, a.CallAttempts, a.Result is not null);

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Approval {id} was not found.");
}
