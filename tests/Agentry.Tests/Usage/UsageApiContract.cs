using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Identity;
using Agentry.Tests.Chat;
using Agentry.Tests.Infrastructure;
using Agentry.Usage;
using Agentry.Workspaces;

namespace Agentry.Tests.Usage;

/// <summary>The usage ledger, its report and daily token budgets, with real inference on the tiny model, on every storage provider.</summary>
public abstract class UsageApiContract(StorageFixture fixture)
{
    private const string Url = "/api/v1/usage";
    private readonly AgentryApp _app = fixture.App;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A workspace with a member, a workspace admin and an API key of scope <c>chat</c>, each a client acting in it.</summary>
    private sealed record Workspace(Guid Id, HttpClient Member, Guid MemberId, HttpClient Admin, HttpClient Key, Guid KeyId);

    private async Task<Workspace> NewWorkspaceAsync(long? keyBudget = null)
    {
        var (id, member) = await WorkspaceClients.NewAsync(_app);
        var admin = await WorkspaceClients.InAsync(_app, id, Roles.Admin);
        var created = await (await fixture.Client.PostJsonAsync($"/api/v1/workspaces/{id}/api-keys",
            new { name = "usage", scopes = new[] { ApiKeyScopes.Chat }, dailyTokenBudget = keyBudget })).ReadAsync<JsonElement>(HttpStatusCode.Created);
        Assert.Equal(keyBudget, created.TryGetProperty("dailyTokenBudget", out var budget) && budget.ValueKind == JsonValueKind.Number ? budget.GetInt64() : null);
        var key = _app.KeyClient(created.GetProperty("key").GetString()!);
        return new Workspace(id, member, await MeAsync(member), admin, key, created.GetProperty("id").GetGuid());
    }

    private static async Task<Guid> MeAsync(HttpClient client) => (await (await client.GetAsync("/api/v1/me", Ct)).ReadAsync<MeResponse>()).Id;

    private static object Completion(string content, int maxTokens = 4, bool stream = false, double? temperature = null) => new
    {
        model = "local/tiny",
        messages = new[] { new { role = "user", content } },
        max_tokens = maxTokens,
        temperature,
        stream,
        stream_options = stream ? new { include_usage = true } : null,
    };

    private static Task<HttpResponseMessage> CompleteAsync(HttpClient client, object request) =>
        client.PostAsync("/v1/chat/completions", HttpAssertions.Json(request), Ct);

    /// <summary>A whole /v1 answer's prompt and completion tokens.</summary>
    private static async Task<(long Prompt, long Completion)> CompleteWholeAsync(HttpClient client, string content)
    {
        var usage = (await (await CompleteAsync(client, Completion(content))).ReadAsync<JsonElement>()).GetProperty("usage");
        return (usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
    }

    private static async Task<ExchangeResponse> SendAsync(HttpClient client, Guid conversation, string content) =>
        await (await client.PostJsonAsync($"/api/v1/conversations/{conversation}/messages", new { content })).ReadAsync<ExchangeResponse>();

    private static async Task<Guid> ConversationAsync(HttpClient client, object body) =>
        (await (await client.PostJsonAsync("/api/v1/conversations", body)).ReadAsync<ConversationResponse>(HttpStatusCode.Created)).Id;

    private static async Task<UsageReport> ReportAsync(HttpClient client, string query = "") =>
        await (await client.GetAsync(Url + query, Ct)).ReadAsync<UsageReport>();

    private static DateOnly Today => DateOnly.FromDateTime(DateTime.UtcNow);

    [Fact]
    public async Task A_conversation_message_and_a_v1_completion_are_recorded_with_their_tokens_per_day_model_and_principal()
    {
        var ws = await NewWorkspaceAsync();
        var exchange = await SendAsync(ws.Member, await ConversationAsync(ws.Member, new { model = "local/tiny" }), "hello world");
        var (prompt, completion) = await CompleteWholeAsync(ws.Key, "the quick brown fox");

        var byPrincipal = await ReportAsync(ws.Member, "?groupBy=principal");
        Assert.Equal("principal", byPrincipal.GroupBy);
        Assert.Equal(
            new[]
            {
                new UsageRow(Today, $"api_key:{ws.KeyId}", prompt, completion, prompt + completion, 1, 0, byPrincipal.Items.Single(r => r.Key!.StartsWith("api_key")).DurationMs),
                new UsageRow(Today, $"user:{ws.MemberId}", exchange.Reply.InputTokens!.Value, exchange.Reply.OutputTokens!.Value,
                    exchange.Reply.InputTokens!.Value + exchange.Reply.OutputTokens!.Value, 1, 0, byPrincipal.Items.Single(r => r.Key!.StartsWith("user")).DurationMs),
            },
            byPrincipal.Items);
        Assert.True(prompt > 0 && completion > 0 && exchange.Reply.OutputTokens > 0);

        var byModel = await ReportAsync(ws.Key, "?groupBy=model");
        var row = Assert.Single(byModel.Items);
        Assert.Equal((Today, "local/tiny", 2L), (row.Day, row.Key, row.Calls));
        Assert.Equal(byPrincipal.Totals, byModel.Totals);
        Assert.Equal(prompt + exchange.Reply.InputTokens + completion + exchange.Reply.OutputTokens, byModel.Totals.TotalTokens);

        var byDay = await ReportAsync(ws.Member);
        Assert.Equal((Today, (string?)null, 2L), (byDay.Items.Single().Day, byDay.Items.Single().Key, byDay.Items.Single().Calls));
        Assert.Null(byDay.GroupBy);
        Assert.InRange(byDay.To - byDay.From, TimeSpan.FromDays(30) - TimeSpan.FromMinutes(1), TimeSpan.FromDays(30) + TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task A_conversation_with_an_agent_is_recorded_under_the_agent()
    {
        var ws = await NewWorkspaceAsync();
        var agent = (await (await ws.Member.PostJsonAsync("/api/v1/agents", new { name = "usage agent", kind = "llm", model = "local/tiny" }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var exchange = await SendAsync(ws.Member, await ConversationAsync(ws.Member, new { agentId = agent }), "hello agent");
        await SendAsync(ws.Member, await ConversationAsync(ws.Member, new { model = "local/tiny" }), "hello model");

        var report = await ReportAsync(ws.Member, "?groupBy=agent");

        Assert.Equal(2, report.Items.Count);
        var byAgent = Assert.Single(report.Items, r => r.Key == agent.ToString());
        Assert.Equal((1L, exchange.Reply.InputTokens!.Value + exchange.Reply.OutputTokens!.Value), (byAgent.Calls, byAgent.TotalTokens));
        Assert.Equal(1, Assert.Single(report.Items, r => r.Key is null).Calls);
    }

    [Theory]
    [InlineData("?groupBy=user", "groupBy")]
    [InlineData("?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "from")]
    [InlineData("?from=2025-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "to")]
    public async Task Bad_report_queries_are_400_naming_the_field(string query, string field)
    {
        var ws = await NewWorkspaceAsync();

        var problem = await (await ws.Member.GetAsync(Url + query, Ct)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");

        var message = Assert.Single(problem.GetProperty("errors").GetProperty(field).EnumerateArray()).GetString()!;
        if (field == "groupBy")
        {
            Assert.Contains("model, principal, agent", message);
        }
    }

    [Fact]
    public async Task A_malformed_time_is_400()
    {
        var ws = await NewWorkspaceAsync();

        var response = await ws.Member.GetAsync(Url + "?from=yesterday", Ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task A_report_covers_only_the_caller_s_workspace_and_the_range_asked()
    {
        var ws = await NewWorkspaceAsync();
        var other = await NewWorkspaceAsync();
        await CompleteWholeAsync(ws.Key, "only in the first workspace");

        Assert.Equal(0, (await ReportAsync(other.Member)).Totals.Calls);
        Assert.Equal(0, (await ReportAsync(other.Key)).Totals.Calls);
        Assert.Equal(1, (await ReportAsync(ws.Member)).Totals.Calls);
        var yesterday = DateTime.UtcNow.Date.AddDays(-1);
        var earlier = await ReportAsync(ws.Member, $"?from={yesterday:yyyy-MM-ddTHH:mm:ssZ}&to={yesterday.AddHours(1):yyyy-MM-ddTHH:mm:ssZ}");
        Assert.Equal((0L, yesterday, yesterday.AddHours(1)), (earlier.Totals.Calls, earlier.From, earlier.To));
        // Naming another workspace is refused as for every workspace resource: it does not exist for this caller.
        using var request = new HttpRequestMessage(HttpMethod.Get, Url);
        request.Headers.Add(CurrentWorkspace.HeaderName, ws.Id.ToString());
        await (await other.Member.SendAsync(request, Ct)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await other.Key.SendAsync(Clone(request), Ct)).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    private static HttpRequestMessage Clone(HttpRequestMessage request)
    {
        var copy = new HttpRequestMessage(request.Method, request.RequestUri);
        foreach (var (name, values) in request.Headers)
        {
            copy.Headers.Add(name, values);
        }
        return copy;
    }

    [Fact]
    public async Task A_spent_workspace_budget_is_429_on_api_v1_and_on_v1_and_leaves_other_workspaces_alone()
    {
        var ws = await NewWorkspaceAsync();
        var other = await NewWorkspaceAsync();
        var patched = await (await ws.Admin.PatchAsJsonAsync($"/api/v1/workspaces/{ws.Id}", new { dailyTokenBudget = 1 }, Ct)).ReadAsync<WorkspaceResponse>();
        Assert.Equal(1, patched.DailyTokenBudget);
        var conversation = await ConversationAsync(ws.Member, new { model = "local/tiny" });

        // Under the budget when it starts, so the first call runs to its end; it spends the budget for the day.
        var first = await SendAsync(ws.Member, conversation, "hello world");
        var spent = first.Reply.InputTokens!.Value + first.Reply.OutputTokens!.Value;

        var refused = await ws.Member.PostJsonAsync($"/api/v1/conversations/{conversation}/messages", new { content = "again" });
        var problem = await refused.AssertProblemAsync(HttpStatusCode.TooManyRequests, TokenBudgetExhaustedException.Code);
        var tomorrow = DateTime.UtcNow.Date.AddDays(1);
        Assert.Equal(("workspace", 1L, (long)spent), (problem.GetProperty("budget").GetString(), problem.GetProperty("limit").GetInt64(), problem.GetProperty("spent").GetInt64()));
        Assert.Equal(tomorrow, problem.GetProperty("resetsAt").GetDateTime().ToUniversalTime());
        Assert.Contains("workspace", problem.GetProperty("detail").GetString());
        Assert.InRange(refused.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromSeconds(1), TimeSpan.FromDays(1));

        var openAi = await CompleteAsync(ws.Key, Completion("hello"));
        var text = await openAi.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, openAi.StatusCode);
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(("rate_limit_error", TokenBudgetExhaustedException.Code), (error.GetProperty("type").GetString(), error.GetProperty("code").GetString()));
        Assert.Contains("daily token budget of 1", error.GetProperty("message").GetString());
        Assert.NotNull(openAi.Headers.RetryAfter);

        // Nothing was recorded for the refusals; another workspace is not held back.
        Assert.Equal(1, (await ReportAsync(ws.Member)).Totals.Calls);
        await CompleteWholeAsync(other.Key, "hello");
        await SendAsync(other.Member, await ConversationAsync(other.Member, new { model = "local/tiny" }), "hello");

        // 0 removes the budget.
        await (await ws.Admin.PatchAsJsonAsync($"/api/v1/workspaces/{ws.Id}", new { dailyTokenBudget = 0 }, Ct)).ReadAsync<WorkspaceResponse>();
        Assert.Equal(MessageStatuses.Complete, (await SendAsync(ws.Member, conversation, "and again")).Reply.Status);
    }

    [Fact]
    public async Task Budgets_out_of_range_are_400()
    {
        var ws = await NewWorkspaceAsync();

        var workspace = await ws.Admin.PatchAsJsonAsync($"/api/v1/workspaces/{ws.Id}", new { dailyTokenBudget = -1 }, Ct);
        var key = await fixture.Client.PostJsonAsync($"/api/v1/workspaces/{ws.Id}/api-keys", new { name = "k", scopes = new[] { ApiKeyScopes.Chat }, dailyTokenBudget = 0 });

        Assert.True((await workspace.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors").TryGetProperty("dailyTokenBudget", out _));
        Assert.True((await key.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors").TryGetProperty("dailyTokenBudget", out _));
    }

    [Fact]
    public async Task A_spent_api_key_budget_refuses_that_key_only()
    {
        var ws = await NewWorkspaceAsync(keyBudget: 5);
        var (prompt, completion) = await CompleteWholeAsync(ws.Key, "hello world, spend my budget");
        Assert.True(prompt + completion >= 5);

        var refused = await CompleteAsync(ws.Key, Completion("hello"));
        var text = await refused.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("API key's daily token budget of 5", JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("message").GetString());

        // The workspace's other principals go on.
        var other = await AgentryApp.CreateApiKeyAsync(fixture.Client, ws.Id, ApiKeyScopes.Chat);
        await CompleteWholeAsync(_app.KeyClient(other), "hello");
        await SendAsync(ws.Member, await ConversationAsync(ws.Member, new { model = "local/tiny" }), "hello");
    }

    [Fact]
    public async Task A_repeated_deterministic_request_is_answered_from_the_cache_and_recorded_as_a_call_without_tokens()
    {
        var ws = await NewWorkspaceAsync();
        var request = Completion($"cache me {Guid.NewGuid():N}", maxTokens: 6, temperature: 0);
        var first = await (await CompleteAsync(ws.Key, request)).ReadAsync<JsonElement>();
        var second = await (await CompleteAsync(ws.Key, request)).ReadAsync<JsonElement>();
        var streamed = Completion($"stream me {Guid.NewGuid():N}", maxTokens: 6, stream: true, temperature: 0);
        var firstStream = await (await CompleteAsync(ws.Key, streamed)).Content.ReadAsStringAsync(Ct);
        var secondStream = await (await CompleteAsync(ws.Key, streamed)).Content.ReadAsStringAsync(Ct);
        // Not deterministic: never cached.
        var warm = Completion("warm", maxTokens: 6, temperature: 0.7);
        var warmTokens = 0L;
        for (var i = 0; i < 2; i++)
        {
            warmTokens += (await (await CompleteAsync(ws.Key, warm)).ReadAsync<JsonElement>()).GetProperty("usage").GetProperty("total_tokens").GetInt64();
        }

        Assert.Equal(Text(first), Text(second));
        Assert.Equal(StreamText(firstStream), StreamText(secondStream));
        var report = await ReportAsync(ws.Member);
        Assert.Equal((6L, 2L), (report.Totals.Calls, report.Totals.CachedCalls));
        var tokens = first.GetProperty("usage").GetProperty("total_tokens").GetInt64();
        var streamUsage = OpenAiGatewayFixture.Chunks(firstStream)[^1].GetProperty("usage").GetProperty("total_tokens").GetInt64();
        Assert.Equal(tokens + streamUsage + warmTokens, report.Totals.TotalTokens);
    }

    private static string Text(JsonElement completion) => completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    private static string StreamText(string body) => string.Concat(OpenAiGatewayFixture.Chunks(body).SelectMany(c => c.GetProperty("choices").EnumerateArray())
        .Select(c => c.GetProperty("delta").TryGetProperty("content", out var content) ? content.GetString() : ""));
}

public sealed class SqliteUsageApiTests(SqliteUsageFixture fixture) : UsageApiContract(fixture), IClassFixture<SqliteUsageFixture>;

public sealed class PostgresUsageApiTests(PostgresUsageFixture fixture) : UsageApiContract(fixture), IClassFixture<PostgresUsageFixture>;
