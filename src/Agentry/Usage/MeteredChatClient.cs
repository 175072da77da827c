using System.Runtime.CompilerServices;
using System.Text;
using Agentry.Data;
using Agentry.Models;
using Microsoft.Extensions.AI;

namespace Agentry.Usage;

/// <summary>
/// A model's shared client seen by one caller: each call is checked against the caller's daily token budgets first and
/// recorded in the usage ledger when it ends — the tokens the provider reported (<see cref="ChatResponse.Usage"/>, or
/// the <see cref="UsageContent"/> of a stream), else an estimate (<see cref="TokenEstimate"/>), marked so. An answer
/// from the response cache is recorded as a call with no tokens. Made per <c>ModelCatalog.ResolveAsync</c>, so it is
/// cheap: it holds references only, and disposing it leaves the shared client alone.
/// </summary>
internal sealed class MeteredChatClient(
    IChatClient inner, string modelId, ModelCaller caller, UsageLedger ledger, TokenBudgets budgets, TimeProvider clock) : DelegatingChatClient(inner)
{
    public override async Task<ChatResponse> GetResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        await budgets.CheckAsync(caller, cancellationToken);
        var prompt = messages as IReadOnlyCollection<ChatMessage> ?? messages.ToList();
        var (at, started) = (clock.UtcNow(), clock.GetTimestamp());
        ChatResponse? response = null;
        try
        {
            response = await base.GetResponseAsync(prompt, options, cancellationToken);
            return response;
        }
        finally
        {
            var outputBytes = response is null ? 0 : Encoding.UTF8.GetByteCount(response.Text);
            await RecordAsync(at, started, prompt, response?.Usage, outputBytes, ResponseCache.IsHit(response?.AdditionalProperties), response is null);
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await budgets.CheckAsync(caller, cancellationToken);
        var prompt = messages as IReadOnlyCollection<ChatMessage> ?? messages.ToList();
        var (at, started) = (clock.UtcNow(), clock.GetTimestamp());
        UsageDetails? usage = null;
        long outputBytes = 0;
        var (cached, completed) = (false, false);
        try
        {
            await foreach (var update in base.GetStreamingResponseAsync(prompt, options, cancellationToken))
            {
                foreach (var content in update.Contents)
                {
                    if (content is UsageContent reported)
                    {
                        usage = reported.Details;
                    }
                    else if (content is TextContent text)
                    {
                        outputBytes += Encoding.UTF8.GetByteCount(text.Text);
                    }
                }
                cached |= ResponseCache.IsHit(update.AdditionalProperties);
                yield return update;
            }
            completed = true;
        }
        finally
        {
            // Also when the caller stops reading or the model fails in mid-answer: what was generated was spent.
            await RecordAsync(at, started, prompt, usage, outputBytes, cached, failed: !completed);
        }
    }

    private ValueTask RecordAsync(
        DateTime at, long started, IReadOnlyCollection<ChatMessage> prompt, UsageDetails? usage, long outputBytes, bool cached, bool failed)
    {
        long promptTokens = 0, completionTokens = 0;
        var estimated = false;
        if (cached)
        {
            // No model ran: the call is counted, its tokens are not.
        }
        else if (usage is { InputTokenCount: { } input, OutputTokenCount: { } output })
        {
            (promptTokens, completionTokens) = (input, output);
        }
        else if (!failed || outputBytes > 0)
        {
            // No usage reported (or a stream cut before its usage came): the model did read the prompt and write the output.
            promptTokens = usage?.InputTokenCount ?? prompt.Sum(m => (long)TokenEstimate.Of(m.Text) + TokenEstimate.MessageOverhead);
            completionTokens = usage?.OutputTokenCount ?? TokenEstimate.BytesToTokens(outputBytes);
            estimated = true;
        }
        var (kind, principal) = caller.Principal;
        return ledger.RecordAsync(new UsageRecord
        {
            Id = Ids.New(), WorkspaceId = caller.WorkspaceId, At = at, Day = DateOnly.FromDateTime(at), Model = modelId,
            PrincipalKind = kind, PrincipalId = principal, AgentId = caller.AgentId, PromptTokens = promptTokens, CompletionTokens = completionTokens,
            DurationMs = (long)clock.GetElapsedTime(started).TotalMilliseconds, Cached = cached, Estimated = estimated, Failed = failed,
        });
    }

    /// <summary>The model's client is shared by every caller and owned by the catalog.</summary>
    protected override void Dispose(bool disposing)
    {
    }
}
