using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Models;
using Agentry.Usage;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Agentry.Chat;

/// <summary>A reply being generated on this node: its live feed, how to stop it, and how it ended.</summary>
internal sealed class ReplyRun(Exchange exchange, Task committed)
{
    public Exchange Exchange { get; } = exchange;

    /// <summary>Completes when the exchange is committed (faults when it could not be): nothing of the reply is written before.</summary>
    public Task Committed { get; } = committed;
    public ReplyFeed Feed { get; } = new();
    public CancellationTokenSource Cancel { get; } = new();
    public TaskCompletionSource<ConversationMessage> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes with the first delta, or with the end when there is none.</summary>
    public TaskCompletionSource FirstOutput { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The reply failed because the model's server could not be reached (a 503 to a waiting client).</summary>
    public bool Unavailable { get; set; }

    /// <summary>A daily token budget was spent between resolving the model and calling it (a 429 to a waiting client).</summary>
    public TokenBudgetExhaustedException? Refusal { get; set; }
}

/// <summary>
/// Generates replies in the background, independent of the request that asked: a client that goes away leaves the reply
/// generating and stored whole. Deltas go to the live feed at once and to the event log in batches (every
/// <c>FlushInterval</c>, or at once when <c>FlushTokens</c> wait), each batch one transaction that also renews the reply's
/// lease and reads whether a cancel was asked for on another node. On shutdown running replies are stopped and stored
/// as failed; a node that dies leaves them to the sweeper once their lease lapses.
/// </summary>
internal sealed class ConversationReplies(
    ConversationStore store, ConversationHistory history, EventSignal signal, TimeProvider clock,
    IOptions<ConversationOptions> options, IHostApplicationLifetime lifetime, ILogger<ConversationReplies> logger) : IHostedService
{
    private readonly ConcurrentDictionary<Guid, ReplyRun> _running = new();
    private readonly ConcurrentDictionary<ReplyRun, Task> _tasks = new();

    /// <summary>
    /// Starts generating the exchange's reply to <paramref name="prompt"/> with <paramref name="model"/>, possibly before
    /// the exchange is committed (<paramref name="committed"/>): the model reads the prompt meanwhile, and the reply's
    /// events reach the log only after the commit. The caller registers the run once committed, or cancels it.
    /// </summary>
    public ReplyRun Start(Exchange exchange, ChatModel model, List<ChatMessage> prompt, Task committed)
    {
        var run = new ReplyRun(exchange, committed);
        foreach (var e in exchange.Events)
        {
            run.Feed.Add(e.ToResponse());
        }
        var conversationId = exchange.Conversation.Id;
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var task = Task.Run(async () =>
        {
            await started.Task;
            try
            {
                await GenerateAsync(run, model, prompt);
            }
            finally
            {
                _running.TryRemove(new KeyValuePair<Guid, ReplyRun>(conversationId, run));
                _tasks.TryRemove(run, out _);
                run.Cancel.Dispose();
            }
        });
        _tasks[run] = task;
        started.SetResult();
        return run;
    }

    /// <summary>
    /// The run's exchange is stored: from now on a cancel for its conversation finds it. Called before the commit is
    /// announced to the run, so that it is registered before it can end (and be unregistered).
    /// </summary>
    public void Register(ReplyRun run) => _running[run.Exchange.Conversation.Id] = run;

    /// <summary>Stops <paramref name="run"/>, whose exchange was not stored.</summary>
    public void Cancel(ReplyRun run)
    {
        try
        {
            run.Cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // it ended meanwhile
        }
    }

    /// <summary>Stops the conversation's reply if this node generates it; false when it does not.</summary>
    public bool Cancel(Guid conversationId)
    {
        if (!_running.TryGetValue(conversationId, out var run))
        {
            return false;
        }
        try
        {
            run.Cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // it ended meanwhile
        }
        return true;
    }

    private async Task GenerateAsync(ReplyRun run, ChatModel model, List<ChatMessage> prompt)
    {
        var (conversation, reply) = (run.Exchange.Conversation, run.Exchange.Reply);
        using var timeout = new CancellationTokenSource(options.Value.GenerationTimeout);
        using var lost = new CancellationTokenSource();
        using var generation = CancellationTokenSource.CreateLinkedTokenSource(run.Cancel.Token, timeout.Token, lost.Token, lifetime.ApplicationStopping);
        var writer = new ReplyWriter(run, store, signal, options.Value, lost, logger);
        var text = new StringBuilder();
        UsageDetails? usage = null;
        ChatFinishReason? finish = null;
        try
        {
            var chatOptions = new ChatOptions { MaxOutputTokens = history.ReplyTokens(model.Model) };
            await foreach (var update in model.Client.GetStreamingResponseAsync(prompt, chatOptions, generation.Token).ReadAheadAsync(ct: generation.Token))
            {
                finish = update.FinishReason ?? finish;
                usage = update.Contents.OfType<UsageContent>().LastOrDefault()?.Details ?? usage;
                var piece = update.Text;
                if (piece.Length > 0)
                {
                    text.Append(piece);
                    writer.Add(ConversationEventTypes.ReplyDelta, new ReplyDeltaData(reply.Id, piece), clock.UtcNow());
                    run.FirstOutput.TrySetResult();
                }
            }
            reply.Status = MessageStatuses.Complete;
            reply.FinishReason = finish?.Value ?? FinishReasons.Stop;
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested)
        {
            ChatLog.ReplyLost(logger, conversation.Id, reply.Id);
            await writer.AbandonAsync();
            return;
        }
        catch (OperationCanceledException) when (run.Cancel.IsCancellationRequested)
        {
            (reply.Status, reply.FinishReason, reply.Error) = (MessageStatuses.Cancelled, FinishReasons.Cancelled, "Cancelled on request.");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            (reply.Status, reply.FinishReason, reply.Error) = (MessageStatuses.Failed, FinishReasons.Timeout,
                $"No complete reply within {options.Value.GenerationTimeout.TotalSeconds:0.#} s (Agentry:Chat:GenerationTimeout).");
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            (reply.Status, reply.FinishReason, reply.Error) = (MessageStatuses.Failed, FinishReasons.Error, "Interrupted: the server shut down.");
        }
        catch (TokenBudgetExhaustedException ex)
        {
            run.Refusal = ex;
            (reply.Status, reply.FinishReason, reply.Error) = (MessageStatuses.Failed, FinishReasons.Error, ex.Message);
        }
        catch (Exception ex)
        {
            run.Unavailable = IsUnavailable(ex);
            (reply.Status, reply.FinishReason, reply.Error) = (MessageStatuses.Failed, FinishReasons.Error,
                run.Unavailable ? $"The model server is unavailable: {ex.Message}" : $"The model failed: {ex.Message}");
            ChatLog.ReplyFailed(logger, conversation.Id, reply.Id, ex);
        }
        reply.Content = text.ToString();
        reply.InputTokens = (int?)usage?.InputTokenCount;
        reply.OutputTokens = (int?)usage?.OutputTokenCount;
        reply.CompletedAt = clock.UtcNow();
        await writer.FinishAsync(reply);
    }

    private static bool IsUnavailable(Exception ex) =>
        ex is DependencyUnavailableException or HttpRequestException { StatusCode: null or >= System.Net.HttpStatusCode.InternalServerError }
            or SocketException
        || (ex.InnerException is { } inner && IsUnavailable(inner));

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Replies still generating stop with the application (they are stored as failed); waits for them to be written.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(_tasks.Values).WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }
}
