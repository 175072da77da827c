using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Tasks;

public static class TaskEndpoints
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    public static IEndpointRouteBuilder MapTasks(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource("/api/v1/tasks", "Tasks");

        group.MapPost("/", SubmitAsync).WithName("SubmitTask").WithSummary("Submit a task to an agent; it runs in the background")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapPost("/batch", SubmitBatchAsync).WithName("SubmitTaskBatch").WithSummary("Submit up to 1,000 tasks in one transaction")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems().ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapGet("/", ListAsync).WithName("ListTasks").WithSummary("List the workspace's tasks, newest first, a page at a time")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/counts", CountAsync).WithName("CountTasks").WithSummary("How many of the workspace's tasks are in each status (the queue's depth)")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetTask").WithSummary("Get a task")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPost("/{id:guid}/cancel", CancelAsync).WithName("CancelTask").WithSummary("Cancel a task; a running one is told to stop, a queued or waiting one ends at once")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{id:guid}/requeue", RequeueAsync).WithName("RequeueTask").WithSummary("Put a dead task back on the queue")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPost("/{id:guid}/discard", DiscardAsync).WithName("DiscardTask").WithSummary("Give up on a dead task for good")
            .RequireScope(ApiKeyScopes.TasksWrite).RequireCurrentWorkspaceRole(Roles.Admin).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/{id:guid}/events", EventsAsync).WithName("ListTaskEvents")
            .WithSummary("A task's events in order: JSON, or a live Server-Sent Events stream (Accept: text/event-stream) that resumes after Last-Event-ID")
            .RequireScope(ApiKeyScopes.TasksRead).RequireCurrentWorkspaceRole(Roles.Viewer)
            .Produces<TaskEventResponse>(StatusCodes.Status200OK, "text/event-stream");
        return endpoints;
    }

    internal static async Task<Results<Accepted<TaskResponse>, ProblemHttpResult>> SubmitAsync(
        SubmitTaskRequest request, [FromHeader(Name = IdempotencyKeyHeader)] string? idempotencyKey, CurrentWorkspace workspace, Caller caller,
        TaskSubmission submission, HttpContext context, CancellationToken ct)
    {
        if (idempotencyKey is not null && (idempotencyKey.Length is 0 or > AgentTask.IdempotencyKeyMaxLength))
        {
            return Problem.Validation(IdempotencyKeyHeader, $"The Idempotency-Key header must be 1-{AgentTask.IdempotencyKeyMaxLength} characters.");
        }
        if (request.IdempotencyKey is not null)
        {
            return Problem.Validation("idempotencyKey", "A single submission takes its key in the Idempotency-Key header.");
        }
        var outcome = await submission.SubmitAsync(workspace.Id, [new(request, idempotencyKey)], caller.Actor, ct);
        if (outcome.Problem is not null)
        {
            return outcome.Problem;
        }
        var (created, task) = outcome.Tasks[0];
        if (!created)
        {
            context.Response.Headers["Idempotent-Replayed"] = "true";
        }
        return TypedResults.Accepted($"/api/v1/tasks/{task.Id}", task.ToResponse());
    }

    internal static async Task<Results<Accepted<BatchResponse>, ProblemHttpResult>> SubmitBatchAsync(
        SubmitTaskBatchRequest request, CurrentWorkspace workspace, Caller caller, TaskSubmission submission, CancellationToken ct)
    {
        var items = request.Tasks.Select((t, i) => new TaskSubmission.Item(t, t.IdempotencyKey, $"tasks[{i}].")).ToList();
        var outcome = await submission.SubmitAsync(workspace.Id, items, caller.Actor, ct);
        return outcome.Problem is not null
            ? outcome.Problem
            : TypedResults.Accepted("/api/v1/tasks", new BatchResponse(outcome.Tasks.Select((t, i) => new BatchItemResult(i, t.Created, t.Task.ToResponse())).ToList()));
    }

    internal static async Task<Ok<TaskCountsResponse>> CountAsync(CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var counts = await db.Tasks.AsNoTracking().Where(t => t.WorkspaceId == workspace.Id)
            .GroupBy(t => t.Status).Select(g => new { Status = g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Status, g => g.Count, ct);
        int Of(string status) => counts.GetValueOrDefault(status);
        return TypedResults.Ok(new TaskCountsResponse(
            Of(AgentTaskStatus.Queued), Of(AgentTaskStatus.Running), Of(AgentTaskStatus.Waiting),
            Of(AgentTaskStatus.Succeeded), Of(AgentTaskStatus.Dead), Of(AgentTaskStatus.Cancelled)));
    }

    internal static async Task<Results<Ok<Page<TaskResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, [FromQuery] string? status, [FromQuery] Guid? agentId, [FromQuery] Guid? scheduleId, [FromQuery] DateTime? createdAfter,
        [FromQuery] DateTime? createdBefore, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Paging.CreationSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        if (status is not null && !AgentTaskStatus.All.Contains(status))
        {
            return Problem.Validation("status", $"Unknown status '{status}'. Allowed: {string.Join(", ", AgentTaskStatus.All)}.");
        }
        var query = db.Tasks.AsNoTracking().Where(t => t.WorkspaceId == workspace.Id);
        if (status is not null)
        {
            query = query.Where(t => t.Status == status);
        }
        if (agentId is not null)
        {
            query = query.Where(t => t.AgentId == agentId);
        }
        if (scheduleId is not null)
        {
            query = query.Where(t => t.ScheduleId == scheduleId);
        }
        if (createdAfter is { } from)
        {
            var utc = from.ToUniversalTime();
            query = query.Where(t => t.CreatedAt >= utc);
        }
        if (createdBefore is { } to)
        {
            var utc = to.ToUniversalTime();
            query = query.Where(t => t.CreatedAt < utc);
        }
        return TypedResults.Ok(await query.CreationPageAsync(sort, after, page.Size, t => t.ToResponse(), ct));
    }

    internal static async Task<Results<Ok<TaskResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var task = await db.Tasks.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id && t.WorkspaceId == workspace.Id, ct);
        return task is null ? NotFound(id) : TypedResults.Ok(task.ToResponse());
    }

    internal static async Task<Results<Accepted<TaskResponse>, ProblemHttpResult>> CancelAsync(
        Guid id, CurrentWorkspace workspace, TaskStore store, RunningTasks running, EventSignal events, AppDbContext db, CancellationToken ct)
    {
        var change = await store.CancelAsync(workspace.Id, id, ct);
        if (change == TaskChange.Requested)
        {
            running.Cancel(id); // at once when it runs on this node; elsewhere with the worker's next heartbeat
        }
        events.Notify(id);
        return change switch
        {
            TaskChange.NotFound => NotFound(id),
            TaskChange.WrongStatus => Problem.Conflict("task_finished", $"Task {id} has already finished; only a queued, running or waiting task can be cancelled."),
            _ => TypedResults.Accepted($"/api/v1/tasks/{id}", await ReadAsync(db, id, ct)),
        };
    }

    internal static Task<Results<Ok<TaskResponse>, ProblemHttpResult>> RequeueAsync(
        Guid id, CurrentWorkspace workspace, TaskStore store, TaskSignal signal, EventSignal events, AppDbContext db, CancellationToken ct) =>
        DeadLetterAsync(id, db, events, signal, store.RequeueAsync(workspace.Id, id, ct), ct);

    internal static Task<Results<Ok<TaskResponse>, ProblemHttpResult>> DiscardAsync(
        Guid id, CurrentWorkspace workspace, TaskStore store, TaskSignal signal, EventSignal events, AppDbContext db, CancellationToken ct) =>
        DeadLetterAsync(id, db, events, signal, store.DiscardAsync(workspace.Id, id, ct), ct);

    private static async Task<Results<Ok<TaskResponse>, ProblemHttpResult>> DeadLetterAsync(
        Guid id, AppDbContext db, EventSignal events, TaskSignal signal, Task<TaskChange> change, CancellationToken ct)
    {
        switch (await change)
        {
            case TaskChange.NotFound:
                return NotFound(id);
            case TaskChange.WrongStatus:
                return Problem.Conflict("task_not_dead", $"Task {id} is not dead; only dead tasks can be requeued or discarded.");
        }
        events.Notify(id);
        signal.Pulse();
        return TypedResults.Ok(await ReadAsync(db, id, ct));
    }

    /// <summary>
    /// The task's events after <paramref name="after"/> (or the <c>Last-Event-ID</c> header). As JSON, one page; as
    /// Server-Sent Events, a live stream (each event's id is its sequence number) that ends once the task has
    /// ended and every event was sent.
    /// </summary>
    internal static async Task<Results<Ok<TaskEventPage>, ServerSentEventsResult<TaskEventResponse>, ProblemHttpResult>> EventsAsync(
        Guid id, [FromQuery] long? after, [FromHeader(Name = EventStreams.LastEventIdHeader)] string? lastEventId, CurrentWorkspace workspace,
        AppDbContext db, EventSignal signal, HttpContext context, CancellationToken ct)
    {
        if (EventStreams.ResolveFrom(after, lastEventId, out var from) is { } invalid)
        {
            return invalid;
        }
        var task = await db.Tasks.AsNoTracking().Where(t => t.Id == id && t.WorkspaceId == workspace.Id)
            .Select(t => new { t.Status, t.CreatedAt }).FirstOrDefaultAsync(ct);
        if (task is null)
        {
            return NotFound(id);
        }
        if (!EventStreams.WantsEventStream(context))
        {
            var (page, full) = await ReadEventsAsync(db, id, task.CreatedAt, from, ct);
            return TypedResults.Ok(new TaskEventPage(page, page.Count > 0 ? page[^1].Seq : from, AgentTaskStatus.IsFinal(task.Status) && !full));
        }
        return TypedResults.ServerSentEvents(EventStreams.TailAsync(
            id, from, (last, token) => ReadEventsAsync(db, id, task.CreatedAt, last, token),
            token => IsFinalAsync(db, id, token), e => (e.Type, e.Seq), signal, ct));
    }

    /// <summary>Whether the task has reached a final state (its event stream then ends once every event was read).</summary>
    internal static async Task<bool> IsFinalAsync(AppDbContext db, Guid id, CancellationToken ct) =>
        AgentTaskStatus.IsFinal(await db.Tasks.AsNoTracking().Where(t => t.Id == id).Select(t => t.Status).FirstAsync(ct));

    /// <summary>Up to a page of events after <paramref name="after"/>, starting with the implied <c>queued</c> (sequence 1); whether more may follow.</summary>
    internal static async Task<EventPage<TaskEventResponse>> ReadEventsAsync(
        AppDbContext db, Guid id, DateTime createdAt, long after, CancellationToken ct)
    {
        var rows = await db.TaskEvents.AsNoTracking().Where(e => e.TaskId == id && e.Seq > after).OrderBy(e => e.Seq).Take(EventStreams.PageSize).ToListAsync(ct);
        var page = new List<TaskEventResponse>(rows.Count + 1);
        if (after < 1)
        {
            page.Add(new TaskEventResponse(1, TaskEventTypes.Queued, createdAt, null));
        }
        page.AddRange(rows.Select(e => e.ToResponse()));
        return new(page, rows.Count == EventStreams.PageSize);
    }

    private static async Task<TaskResponse> ReadAsync(AppDbContext db, Guid id, CancellationToken ct) =>
        (await db.Tasks.AsNoTracking().FirstAsync(t => t.Id == id, ct)).ToResponse();

    internal static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Task {id} was not found.");
}
