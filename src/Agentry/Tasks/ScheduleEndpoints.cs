using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Tasks;

public static class ScheduleEndpoints
{
    public static IEndpointRouteBuilder MapSchedules(this IEndpointRouteBuilder endpoints)
    {
        // Every route acts in the request's workspace (see CurrentWorkspace). A schedule's tasks are listed by GET /api/v1/tasks?scheduleId=.
        var group = endpoints.MapWorkspaceResource("/api/v1/schedules", "Schedules");

        group.MapPost("/", CreateAsync).WithName("CreateSchedule").WithSummary("Create a schedule that submits a task to an agent at every cron slot")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapGet("/", ListAsync).WithName("ListSchedules").WithSummary("List the workspace's schedules, a page at a time")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetSchedule").WithSummary("Get a schedule and its next slot")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateSchedule")
            .WithSummary("Change a schedule; a new expression, time zone or enabling computes the next slot from now")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteSchedule").WithSummary("Delete a schedule; the tasks it created stay")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member);
        return endpoints;
    }

    internal static async Task<Results<Created<ScheduleResponse>, ProblemHttpResult>> CreateAsync(
        CreateScheduleRequest request, CurrentWorkspace workspace, Caller caller, AppDbContext db, IFusionCache cache,
        IEnumerable<ITaskHandler> handlers, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var cron = request.Cron?.Trim() ?? "";
        var zone = request.TimeZone ?? ScheduleContracts.DefaultTimeZone;
        var check = await CheckAsync(new Target(workspace.Id, request.AgentId!.Value, cron, zone), db, cache, handlers, ct);
        if (check.Problem is not null)
        {
            return check.Problem;
        }
        var now = clock.UtcNow();
        var enabled = request.Enabled ?? true;
        var schedule = new Schedule
        {
            Id = Ids.New(),
            WorkspaceId = workspace.Id,
            Name = request.Name.Trim(),
            AgentId = request.AgentId.Value,
            Cron = cron,
            TimeZone = zone,
            Input = request.Input is { } input ? input.GetRawText() : "{}",
            Priority = request.Priority ?? TaskContracts.DefaultPriority,
            MaxAttempts = request.MaxAttempts,
            TimeoutSeconds = request.TimeoutSeconds,
            Enabled = enabled,
            NextRunAt = enabled ? check.Clock!.Next(now) : null,
            CreatedAt = now,
            UpdatedAt = now,
            CreatedBy = caller.Actor,
        };
        db.Schedules.Add(schedule);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(schedule.Name);
        }
        await audit.RecordAsync(AuditActions.ScheduleCreated, AuditOutcomes.Success, workspace.Id, AuditTargets.Schedule(schedule.Id),
            new { name = schedule.Name, agentId = schedule.AgentId, cron, timeZone = zone });
        return TypedResults.Created($"/api/v1/schedules/{schedule.Id}", schedule.ToResponse());
    }

    internal static async Task<Results<Ok<Page<ScheduleResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, [FromQuery] Guid? agentId, [FromQuery] bool? enabled, CurrentWorkspace workspace, AppDbContext db,
        CancellationToken ct)
    {
        if (page.Resolve(Paging.NamedRowSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var query = db.Schedules.AsNoTracking().Where(s => s.WorkspaceId == workspace.Id);
        if (agentId is not null)
        {
            query = query.Where(s => s.AgentId == agentId);
        }
        if (enabled is not null)
        {
            query = query.Where(s => s.Enabled == enabled);
        }
        return TypedResults.Ok(await query.NamedRowPageAsync(sort, after, page.Size, s => s.ToResponse(), ct));
    }

    internal static async Task<Results<Ok<ScheduleResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var schedule = await db.Schedules.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id && s.WorkspaceId == workspace.Id, ct);
        return schedule is null ? NotFound(id) : TypedResults.Ok(schedule.ToResponse());
    }

    internal static async Task<Results<Ok<ScheduleResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateScheduleRequest request, CurrentWorkspace workspace, AppDbContext db, IFusionCache cache,
        IEnumerable<ITaskHandler> handlers, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var schedule = await db.Schedules.FirstOrDefaultAsync(s => s.Id == id && s.WorkspaceId == workspace.Id, ct);
        if (schedule is null)
        {
            return NotFound(id);
        }
        // The agent is checked only when it changes: a schedule whose agent was deleted can still be disabled or repointed.
        var target = new Target(workspace.Id, request.AgentId ?? schedule.AgentId, request.Cron?.Trim() ?? schedule.Cron,
            request.TimeZone ?? schedule.TimeZone, CheckAgent: request.AgentId is { } agentId && agentId != schedule.AgentId);
        var check = await CheckAsync(target, db, cache, handlers, ct);
        if (check.Problem is not null)
        {
            return check.Problem;
        }
        var enabled = request.Enabled ?? schedule.Enabled;
        var retimed = target.Cron != schedule.Cron || target.TimeZone != schedule.TimeZone || enabled != schedule.Enabled;
        var name = request.Name?.Trim() ?? schedule.Name;
        (schedule.Name, schedule.AgentId, schedule.Cron, schedule.TimeZone, schedule.Enabled) = (name, target.AgentId, target.Cron, target.TimeZone, enabled);
        schedule.Input = request.Input is { } input ? input.GetRawText() : schedule.Input;
        schedule.Priority = request.Priority ?? schedule.Priority;
        schedule.MaxAttempts = request.MaxAttempts ?? schedule.MaxAttempts;
        schedule.TimeoutSeconds = request.TimeoutSeconds ?? schedule.TimeoutSeconds;
        var now = clock.UtcNow();
        if (retimed)
        {
            // From now: slots passed while the schedule was disabled, or under its old expression, are not fired.
            schedule.NextRunAt = enabled ? check.Clock!.Next(now) : null;
        }
        var changed = db.Entry(schedule).Properties.Where(p => p.IsModified).Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Metadata.Name)).ToList();
        if (changed.Count == 0)
        {
            return TypedResults.Ok(schedule.ToResponse());
        }
        schedule.UpdatedAt = now;
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(name);
        }
        await audit.RecordAsync(AuditActions.ScheduleUpdated, AuditOutcomes.Success, workspace.Id, AuditTargets.Schedule(id), new { changed });
        return TypedResults.Ok(schedule.ToResponse());
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, AuditTrail audit, CancellationToken ct)
    {
        var deleted = await db.Schedules.Where(s => s.Id == id && s.WorkspaceId == workspace.Id).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return NotFound(id);
        }
        await audit.RecordAsync(AuditActions.ScheduleDeleted, AuditOutcomes.Success, workspace.Id, AuditTargets.Schedule(id));
        return TypedResults.NoContent();
    }

    /// <summary>What a schedule would run: the agent, and when.</summary>
    private sealed record Target(Guid WorkspaceId, Guid AgentId, string Cron, string TimeZone, bool CheckAgent = true);

    /// <summary>
    /// A 400 naming each wrong field (expression, zone, agent), or a 422 for an agent whose kind no handler runs here
    /// (the same refusal a submission would meet at every slot); otherwise the parsed clock.
    /// </summary>
    private static async Task<(ProblemHttpResult? Problem, ScheduleClock? Clock)> CheckAsync(
        Target target, AppDbContext db, IFusionCache cache, IEnumerable<ITaskHandler> handlers, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!ScheduleClock.TryParseCron(target.Cron, out var cron))
        {
            errors["cron"] = [$"'{target.Cron}' is not a cron expression: five fields (minute hour day month weekday), or six with a leading seconds field."];
        }
        if (!ScheduleClock.TryFindZone(target.TimeZone, out var zone))
        {
            errors["timeZone"] = [$"'{target.TimeZone}' is not a known IANA time zone id (such as UTC or Europe/Berlin)."];
        }
        var agent = target.CheckAgent ? await AgentEndpoints.FindAsync(target.WorkspaceId, target.AgentId, () => db, cache, ct) : null;
        if (target.CheckAgent && agent is null)
        {
            errors["agentId"] = [$"Agent {target.AgentId} was not found in this workspace."];
        }
        if (errors.Count > 0)
        {
            return (Problem.Validation(errors), null);
        }
        if (agent is not null && !handlers.Any(h => h.Kind == agent.Kind))
        {
            return (Problem.Unprocessable("agent_not_runnable",
                $"The agent '{agent.Name}' is a {agent.Kind} agent, and {agent.Kind} agents cannot run tasks on this installation yet."), null);
        }
        return (null, new ScheduleClock(cron!, zone!));
    }

    private static ProblemHttpResult NameTaken(string name) =>
        Problem.Conflict("name_taken", $"A schedule named '{name}' already exists in this workspace.");

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Schedule {id} was not found.");
}
