using System.Text;
using Agentry.Data;
using Agentry.Models;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Options;

namespace Agentry.Chat;

/// <summary>How many tokens a text is for one model: exact (the model's own tokenizer) or an estimate.</summary>
internal sealed record TokenCount(Func<string, int> Count, bool Exact);

/// <summary>
/// What is sent to the model with a reply: the system prompt (always), then as many of the newest messages as fit the
/// model's window once room for the reply is left (the oldest go first; none is cut in the middle). GGUF models run by
/// llama.cpp count with their own tokenizer; for models behind an HTTP server the count is an estimate (UTF-8 bytes / 3).
/// Either way each message is allowed <see cref="MessageOverhead"/> tokens for its role markers.
/// </summary>
internal sealed class ConversationHistory(IEnumerable<IModelProvider> providers, IServiceProvider services, IOptions<ConversationOptions> options)
{
    /// <summary>Role markers around each message.</summary>
    public const int MessageOverhead = TokenEstimate.MessageOverhead;

    /// <summary>The start of the prompt and the open assistant turn it ends with.</summary>
    public const int PromptOverhead = 8;

    private const int PageSize = 200;

    public int Window(ModelResponse model) => model.ContextLength ?? options.Value.DefaultContextLength;

    /// <summary>The most tokens a reply may take: the configured limit, but never more than half the window.</summary>
    public int ReplyTokens(ModelResponse model) => Math.Min(options.Value.MaxReplyTokens, Window(model) / 2);

    /// <summary>The tokens the system prompt and messages may take together.</summary>
    public int Budget(ModelResponse model) => Window(model) - ReplyTokens(model) - PromptOverhead;

    public async Task<TokenCount> CounterAsync(ModelResponse model, CancellationToken ct)
    {
        if (providers.FirstOrDefault(p => p.Options.Name == model.Provider) is { Options: { Kind: ModelProviderOptions.LlamaCpp, Path: { } path } })
        {
            return await LlamaCppCounterAsync(path, ct);
        }
        return new TokenCount(TokenEstimate.Of, Exact: false);
    }

    // A method of its own, so LLamaSharp is loaded only where a llamacpp provider is configured.
    private async Task<TokenCount> LlamaCppCounterAsync(string path, CancellationToken ct)
    {
        var weights = await services.GetRequiredService<LlamaCppModels>().GetAsync(path, ct);
        return new TokenCount(text => weights.Tokenize(text, add_bos: false, special: true, Encoding.UTF8).Length, Exact: true);
    }

    public static int Cost(TokenCount counter, string text) => counter.Count(text) + MessageOverhead;

    /// <summary>
    /// The messages to send for a new message: the system prompt and the newest earlier messages that fit
    /// (user messages, and replies with text that completed or were cancelled; failed replies are left out).
    /// </summary>
    /// <remarks>
    /// <paramref name="message"/> is the user's new message, not stored yet: it is the newest and always kept (the caller
    /// has checked that it fits); the stored messages before position <paramref name="before"/> fill what is left.
    /// </remarks>
    public async Task<List<ChatMessage>> BuildAsync(
        AppDbContext db, Conversation conversation, int before, string message, ModelResponse model, TokenCount counter, CancellationToken ct,
        string? context = null)
    {
        var budget = Budget(model);
        var system = conversation.SystemPrompt is { Length: > 0 } prompt ? new ChatMessage(ChatRole.System, prompt) : null;
        if (system is not null)
        {
            budget -= Cost(counter, system.Text);
        }
        // Retrieved knowledge goes just before the new message it was found for (the caller has checked that it fits).
        var kept = new List<ChatMessage> { new(ChatRole.User, message) };
        if (context is not null)
        {
            kept.Add(new ChatMessage(ChatRole.System, context));
            budget -= Cost(counter, context);
        }
        budget -= Cost(counter, message);
        while (true)
        {
            var page = await db.ConversationMessages.AsNoTracking()
                .Where(m => m.ConversationId == conversation.Id && m.Position < before)
                .OrderByDescending(m => m.Position).Take(PageSize)
                .Select(m => new { m.Position, m.Role, m.Content, m.Status }).ToListAsync(ct);
            foreach (var m in page)
            {
                if (m.Role == MessageRoles.Assistant && (m.Status is MessageStatuses.Failed or MessageStatuses.Generating || m.Content.Length == 0))
                {
                    continue;
                }
                var cost = Cost(counter, m.Content);
                if (cost > budget)
                {
                    return Ordered(system, kept);
                }
                budget -= cost;
                kept.Add(new ChatMessage(m.Role == MessageRoles.User ? ChatRole.User : ChatRole.Assistant, m.Content));
            }
            if (page.Count < PageSize)
            {
                return Ordered(system, kept);
            }
            before = page[^1].Position;
        }
    }

    private static List<ChatMessage> Ordered(ChatMessage? system, List<ChatMessage> newestFirst)
    {
        newestFirst.Reverse();
        if (system is not null)
        {
            newestFirst.Insert(0, system);
        }
        return newestFirst;
    }
}
