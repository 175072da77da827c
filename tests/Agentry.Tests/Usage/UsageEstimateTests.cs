using System.Text.Json;
using Agentry.Data;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Agentry.Usage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Usage;

/// <summary>
/// An OpenAI-compatible server that reports no usage (the field is optional, and some servers leave it out): the ledger
/// records an estimate, marked so, rather than a call that cost nothing.
/// </summary>
public sealed class UsageEstimateTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_call_whose_server_reports_no_usage_is_recorded_with_estimated_tokens()
    {
        await using var server = await StandInServer.StartAsync(routes =>
        {
            routes.MapGet("/v1/models", () => Results.Text("""{"object":"list","data":[{"id":"quiet","object":"model","created":1746000000,"owned_by":"someone"}]}""", "application/json"));
            routes.MapPost("/v1/chat/completions", AnswerWithoutUsageAsync);
        });
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "quiet",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = new Uri(server.BaseUri, "/v1").ToString(),
        });
        var caller = new ModelCaller(Guid.CreateVersion7(), Guid.CreateVersion7(), null);
        var model = await app.Services.GetRequiredService<ModelCatalog>().ResolveAsync("quiet/quiet", caller, Ct);

        var whole = await model!.Client.GetResponseAsync("Say hello", cancellationToken: Ct);
        var streamed = await model.Client.GetStreamingResponseAsync("Say hello", cancellationToken: Ct).ToListAsync(Ct);

        Assert.Null(whole.Usage);
        Assert.Empty(streamed.SelectMany(u => u.Contents).OfType<UsageContent>());
        await app.Services.GetRequiredService<UsageLedger>().FlushAsync(Ct);
        await using var scope = app.Services.CreateAsyncScope();
        var records = await scope.ServiceProvider.GetRequiredService<AppDbContext>().UsageRecords.AsNoTracking()
            .Where(r => r.WorkspaceId == caller.WorkspaceId).ToListAsync(Ct);
        // "Say hello" is 9 bytes: 3 tokens and 8 for the message's role markers; "Hello there" is 11 bytes: 4 tokens.
        Assert.Equal(2, records.Count);
        Assert.All(records, r => Assert.Equal(
            ("quiet/quiet", UsagePrincipals.User, caller.UserId, 11L, 4L, true, false, false),
            (r.Model, r.PrincipalKind, r.PrincipalId, r.PromptTokens, r.CompletionTokens, r.Estimated, r.Cached, r.Failed)));
    }

    private static async Task AnswerWithoutUsageAsync(HttpContext context)
    {
        var request = (await JsonDocument.ParseAsync(context.Request.Body)).RootElement;
        const string head = """{"id":"chatcmpl-8","created":1746000000,"model":"quiet","system_fingerprint":null""";
        if (!(request.TryGetProperty("stream", out var stream) && stream.GetBoolean()))
        {
            await context.Response.WriteAsJsonAsync(JsonDocument.Parse(
                $$"""{{head}},"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"logprobs":null,"finish_reason":"stop"}]}""").RootElement);
            return;
        }
        var events = new[] { "{\"role\":\"assistant\",\"content\":\"Hello\"}", "{\"content\":\" there\"}" }
            .Select(delta => $$"""{{head}},"object":"chat.completion.chunk","choices":[{"index":0,"delta":{{delta}},"logprobs":null,"finish_reason":null}]}""")
            .Append($$"""{{head}},"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}""")
            .Select(data => $"data: {data}\n\n")
            .Append("data: [DONE]\n\n");
        await StandInServer.StreamAsync(context.Response, "text/event-stream", events);
    }
}
