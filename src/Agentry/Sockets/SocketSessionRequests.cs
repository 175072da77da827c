using System.Text.Json;
using Agentry.Chat;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Tasks;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;

namespace Agentry.Sockets;

/// <summary>The client's messages: each is answered in order with an <c>ack</c>, an <c>error</c> or a <c>pong</c>.</summary>
internal sealed partial class SocketSession
{
    /// <summary>Answers one message; false when the connection is closing and nothing more should be read.</summary>
    private async Task<bool> HandleAsync(ReadOnlyMemory<byte> message, CancellationToken ct)
    {
        if (!await CheckCredentialAsync())
        {
            return false;
        }
        var (request, malformed) = SocketRequest.Parse(message);
        if (request is not { } r)
        {
            return await EnqueueAsync(malformed!, ct);
        }
        byte[] answer;
        try
        {
            answer = r.Op switch
            {
                "ping" => SocketFrames.Pong(r.RequestId),
                "subscribe" => await SubscribeAsync(r, ct),
                "unsubscribe" => Unsubscribe(r),
                "send" => await SendAsync(r, ct),
                "cancel" => await CancelAsync(r, ct),
                _ => SocketFrames.Error(r.RequestId, SocketErrors.UnknownOp, $"Unknown op '{r.Op}'; the ops are subscribe, unsubscribe, send, cancel and ping."),
            };
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            SocketLog.RequestFailed(logger, r.Op, e);
            answer = e.IsDatabaseOutage()
                ? SocketFrames.Error(r.RequestId, ProblemCodes.Unavailable, "A dependency of this request is temporarily unavailable; retry shortly.")
                : SocketFrames.Error(r.RequestId, ProblemCodes.InternalError, "An unexpected error occurred.");
        }
        var queued = await EnqueueAsync(answer, ct);
        StartPending();
        return queued;
    }

    private async Task<byte[]> SubscribeAsync(SocketRequest r, CancellationToken ct)
    {
        var stream = r.String("stream");
        var id = r.Id("id");
        var after = r.After();
        if (stream is not (SocketStreams.Task or SocketStreams.Conversation))
        {
            return Invalid(r, "stream", "stream must be \"conversation\" or \"task\".");
        }
        if (id is not { } streamId || streamId == Guid.Empty)
        {
            return Invalid(r, "id", "id must be the task's or conversation's id.");
        }
        if (after is not { } from)
        {
            return Invalid(r, "after", "after must be the last sequence number received (0 or more), or left out.");
        }
        if (await RefuseAsync(r, stream == SocketStreams.Task ? ApiKeyScopes.TasksRead : ApiKeyScopes.Chat, Roles.Viewer, ct) is { } refused)
        {
            return refused;
        }
        var (subscription, problem) = await SubscribeAsync(r, stream, streamId, from, ct);
        return subscription is null ? problem! : SocketFrames.Ack(r.RequestId, r.Op, w =>
        {
            w.WriteString("stream", stream);
            w.WriteString("id", streamId);
            w.WriteNumber("after", from);
        });
    }

    /// <summary>
    /// Registers a subscription whose pump starts once the answer is queued, so the <c>ack</c> comes before its events;
    /// or the <c>error</c> that refuses it.
    /// </summary>
    private async Task<(Subscription? Subscription, byte[]? Error)> SubscribeAsync(SocketRequest r, string stream, Guid id, long after, CancellationToken ct)
    {
        if (Refusal(r, stream, id) is { } refusal)
        {
            return (null, refusal);
        }
        var scope = scopes.CreateAsyncScope();
        var subscription = new Subscription(stream, id, after, _stop.Token);
        IAsyncEnumerable<StreamEvent>? events;
        try
        {
            events = await SocketStreams.OpenAsync(
                scope.ServiceProvider.GetRequiredService<AppDbContext>(), signal, stream, id, workspace.Id, after, subscription.Cancel.Token);
        }
        catch
        {
            subscription.Dispose();
            await scope.DisposeAsync();
            throw;
        }
        lock (_lock)
        {
            if (events is not null && Refusal(r, stream, id) is null)
            {
                _subscriptions.Add((stream, id), subscription);
                _pending.Add((subscription, scope, events));
                return (subscription, null);
            }
        }
        subscription.Dispose();
        await scope.DisposeAsync();
        return (null, events is null ? Error(r.RequestId, SocketStreams.NotFound(stream, id)) : Refusal(r, stream, id));
    }

    /// <summary>Why another subscription to the stream is refused (already subscribed, or the cap reached); null when it is not.</summary>
    private byte[]? Refusal(SocketRequest r, string stream, Guid id)
    {
        lock (_lock)
        {
            return _subscriptions.ContainsKey((stream, id))
                ? SocketFrames.Error(r.RequestId, SocketErrors.AlreadySubscribed, $"This connection already follows {stream} {id}.")
                : _subscriptions.Count >= options.MaxSubscriptions
                    ? SocketFrames.Error(r.RequestId, SocketErrors.TooManySubscriptions,
                        $"A connection may follow at most {options.MaxSubscriptions} streams; unsubscribe from one first.")
                    : null;
        }
    }

    /// <summary>Starts the pumps of the subscriptions the last message made, now that its answer is queued.</summary>
    private void StartPending()
    {
        lock (_lock)
        {
            foreach (var (subscription, scope, events) in _pending)
            {
                _pumps.Add(PumpAsync(subscription, scope, events));
            }
            _pending.Clear();
        }
    }

    private byte[] Unsubscribe(SocketRequest r)
    {
        var stream = r.String("stream");
        if (r.Id("id") is not { } id || stream is null)
        {
            return Invalid(r, stream is null ? "stream" : "id", "Name the stream (\"conversation\" or \"task\") and its id.");
        }
        lock (_lock)
        {
            if (!_subscriptions.Remove((stream, id), out var subscription))
            {
                return SocketFrames.Error(r.RequestId, SocketErrors.NotSubscribed, $"This connection does not follow {stream} {id}.");
            }
            subscription.Cancel.Cancel();
        }
        return SocketFrames.Ack(r.RequestId, r.Op, w =>
        {
            w.WriteString("stream", stream);
            w.WriteString("id", id);
        });
    }

    /// <summary>
    /// Starts a reply exactly as <c>POST /api/v1/conversations/{id}/messages</c> does; the connection then follows the
    /// conversation from the new message on (unless it already does, or follows as many streams as it may).
    /// </summary>
    private async Task<byte[]> SendAsync(SocketRequest r, CancellationToken ct)
    {
        if (r.Id("conversationId") is not { } conversationId || conversationId == Guid.Empty)
        {
            return Invalid(r, "conversationId", "conversationId must be the conversation's id.");
        }
        if (await RefuseAsync(r, ApiKeyScopes.Chat, Roles.Member, ct) is { } refused)
        {
            return refused;
        }
        ReplyRun? run;
        ProblemHttpResult? problem;
        await using (var scope = scopes.CreateAsyncScope())
        {
            (run, problem) = await scope.ServiceProvider.GetRequiredService<ConversationExchanges>()
                .StartAsync(workspace.Id, conversationId, r.String("content"), "content", caller, ct);
        }
        if (run is null)
        {
            return Error(r.RequestId, problem!);
        }
        var first = run.Exchange.Events[0].Seq;
        var (subscription, _) = await SubscribeAsync(r, SocketStreams.Conversation, conversationId, first - 1, ct);
        return SocketFrames.Ack(r.RequestId, r.Op, w =>
        {
            w.WriteString("conversationId", conversationId);
            w.WriteString("messageId", run.Exchange.Message.Id);
            w.WriteString("replyId", run.Exchange.Reply.Id);
            w.WriteNumber("seq", first);
            w.WriteBoolean("subscribed", subscription is not null);
        });
    }

    /// <summary>Cancels a reply or a task exactly as <c>POST /api/v1/conversations/{id}/cancel</c> and <c>POST /api/v1/tasks/{id}/cancel</c> do.</summary>
    private async Task<byte[]> CancelAsync(SocketRequest r, CancellationToken ct)
    {
        var (conversationId, taskId) = (r.Id("conversationId"), r.Id("taskId"));
        if ((conversationId is null) == (taskId is null) || conversationId == Guid.Empty || taskId == Guid.Empty)
        {
            return Invalid(r, conversationId is null ? "taskId" : "conversationId", "Name either a conversationId or a taskId.");
        }
        var isTask = taskId is not null;
        if (await RefuseAsync(r, isTask ? ApiKeyScopes.TasksWrite : ApiKeyScopes.Chat, Roles.Member, ct) is { } refused)
        {
            return refused;
        }
        await using var scope = scopes.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<AppDbContext>();
        IResult result = isTask
            ? (await TaskEndpoints.CancelAsync(taskId!.Value, workspace, services.GetRequiredService<TaskStore>(), services.GetRequiredService<RunningTasks>(),
                signal, db, ct)).Result
            : (await ConversationEndpoints.CancelAsync(conversationId!.Value, workspace, db, services.GetRequiredService<ConversationReplies>(), ct)).Result;
        return result is ProblemHttpResult problem
            ? Error(r.RequestId, problem)
            : SocketFrames.Ack(r.RequestId, r.Op, w => w.WriteString(isTask ? "taskId" : "conversationId", (taskId ?? conversationId)!.Value));
    }

    /// <summary>
    /// The access rules of the equivalent HTTP endpoint, checked per message (a membership can change while the connection
    /// lives): a key or service account needs <paramref name="scope"/>, a user <paramref name="role"/> in the workspace.
    /// </summary>
    private async Task<byte[]?> RefuseAsync(SocketRequest r, string scope, string role, CancellationToken ct)
    {
        if (caller.IsWorkspaceBound && !ApiKeyScopes.Grants(caller.Scopes, scope))
        {
            return SocketFrames.Error(r.RequestId, ProblemCodes.Forbidden, $"The API key or service account lacks the scope '{scope}'.");
        }
        if (caller.IsPlatformAdmin)
        {
            return null;
        }
        var have = await caller.RoleInAsync(workspace.Id, ct);
        return have is null ? SocketFrames.Error(r.RequestId, ProblemCodes.NotFound, $"Workspace {workspace.Id} was not found.")
            : !Roles.Satisfies(have, role) ? SocketFrames.Error(r.RequestId, ProblemCodes.Forbidden, $"This needs the {role} role in the workspace; the caller is {have}.")
            : null;
    }

    private static byte[] Invalid(SocketRequest r, string field, string message) =>
        SocketFrames.Error(r.RequestId, ProblemCodes.ValidationFailed, message, new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>A problem the HTTP endpoint would answer, as an <c>error</c> frame with the same code, words and field errors.</summary>
    private static byte[] Error(JsonElement? requestId, ProblemHttpResult problem)
    {
        var details = problem.ProblemDetails;
        var errors = (details as HttpValidationProblemDetails)?.Errors;
        var code = details.Extensions.TryGetValue("code", out var value) && value is string given ? given
            : errors is not null ? ProblemCodes.ValidationFailed
            : ProblemCodes.ForStatus(problem.StatusCode);
        var message = details.Detail ?? errors?.SelectMany(e => e.Value).FirstOrDefault() ?? details.Title ?? code;
        return SocketFrames.Error(requestId, code, message, errors);
    }
}
