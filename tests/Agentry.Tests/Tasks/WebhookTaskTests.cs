using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Tasks;

/// <summary>
/// Webhook agents and completion webhooks, end to end: tasks submitted through the API are posted by the
/// workers to a real local receiver, through the egress guard (which allows 127.0.0.1 here and nothing
/// else private). The same on every storage provider; each test has its own workspace and receiver.
/// </summary>
public abstract class WebhookTaskContract(StorageFixture fixture) : IAsyncLifetime
{
    /// <summary>Loopback allowed for the receiver; a fast queue so retries take a fraction of a second.</summary>
    public static readonly IReadOnlyDictionary<string, string?> Settings = new Dictionary<string, string?>
    {
        ["Agentry:Egress:AllowedNetworks:0"] = "127.0.0.1/32",
        ["Agentry:Queue:PollInterval"] = "00:00:00.020",
        ["Agentry:Queue:RetryBaseDelay"] = "00:00:00.100",
        ["Agentry:Queue:Heartbeat"] = "00:00:00.200",
        ["Agentry:Queue:Lease"] = "00:00:05",
    };

    private const string Agents = "/api/v1/agents";
    private const string Tasks = "/api/v1/tasks";
    private const string Secret = "test-signing-secret-0123456789";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly AgentryApp _app = fixture.App;
    private WebhookReceiver _receiver = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _receiver = await WebhookReceiver.StartAsync();
        _client = await _app.UserClientAsync(await _app.CreateWorkspaceAsync(), Roles.Admin);
    }

    public async ValueTask DisposeAsync() => await _receiver.DisposeAsync();

    [Fact]
    public async Task A_webhook_task_is_posted_signed_and_the_answer_becomes_its_result()
    {
        var agent = await CreateAsync(new { name = "hook", kind = "webhook", webhook = new { url = _receiver.Url("run", new Reply(200, """{"answer":42,"items":["a","b"]}""")), secret = Secret } });

        var task = await RunAsync(agent.Id, new { question = "life" });

        Assert.Equal((AgentTaskStatus.Succeeded, 1), (task.Status, task.Attempts));
        Assert.Equal("""{"answer":42,"items":["a","b"]}""", JsonSerializer.Serialize(task.Result));
        var call = Assert.Single(_receiver.CallsTo("run"));
        Assert.StartsWith("application/json", call.Header("Content-Type"));
        Assert.Equal(task.Id.ToString(), call.Header("Agentry-Task-Id"));
        Assert.Equal(task.Id.ToString(), call.Header("Idempotency-Key"));
        var timestamp = AssertSigned(call, Secret);
        Assert.InRange(timestamp, DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeSeconds());
        var body = JsonDocument.Parse(call.Body).RootElement;
        Assert.Equal("task.run", body.GetProperty("type").GetString());
        Assert.Equal(task.Id, body.GetProperty("taskId").GetGuid());
        Assert.Equal(agent.Id, body.GetProperty("agentId").GetGuid());
        Assert.Equal(1, body.GetProperty("agentVersion").GetInt32());
        Assert.Equal(1, body.GetProperty("attempt").GetInt32());
        Assert.Equal("""{"question":"life"}""", body.GetProperty("input").GetRawText());
    }

    [Fact]
    public async Task An_answer_that_is_not_json_is_kept_as_a_string_and_an_empty_one_as_no_result()
    {
        var text = await CreateAsync(Hook("text", _receiver.Url("text", new Reply(200, "plain words", "text/plain"))));
        var empty = await CreateAsync(Hook("empty", _receiver.Url("empty", new Reply(204))));

        var fromText = await RunAsync(text.Id);
        var fromEmpty = await RunAsync(empty.Id);

        Assert.Equal(AgentTaskStatus.Succeeded, fromText.Status);
        Assert.Equal("plain words", fromText.Result!.Value.GetString());
        Assert.Equal(AgentTaskStatus.Succeeded, fromEmpty.Status);
        Assert.Null(fromEmpty.Result);
    }

    [Fact]
    public async Task An_answer_over_64_KB_fails_the_task_for_good()
    {
        var agent = await CreateAsync(Hook("verbose", _receiver.Url("verbose", new Reply(200, $"\"{new string('x', 70_000)}\""))));

        var task = await RunAsync(agent.Id, maxAttempts: 3);

        Assert.Equal((AgentTaskStatus.Dead, 1), (task.Status, task.Attempts));
        Assert.Contains("64 KB", task.LastError);
        Assert.Null(task.Result);
    }

    [Fact]
    public async Task A_500_is_retried_and_the_second_attempt_succeeds_with_the_same_idempotency_key()
    {
        var agent = await CreateAsync(Hook("flaky", _receiver.Url("flaky", new Reply(500, """{"error":"busy"}"""), new Reply(200, """{"done":true}"""))));

        var task = await RunAsync(agent.Id, maxAttempts: 3);

        Assert.Equal((AgentTaskStatus.Succeeded, 2), (task.Status, task.Attempts));
        Assert.Equal("""{"done":true}""", JsonSerializer.Serialize(task.Result));
        var calls = _receiver.CallsTo("flaky");
        Assert.Equal(2, calls.Count);
        Assert.All(calls, c => Assert.Equal(task.Id.ToString(), c.Header("Idempotency-Key")));
        Assert.Equal([1, 2], calls.Select(c => JsonDocument.Parse(c.Body).RootElement.GetProperty("attempt").GetInt32()));
        var events = await (await _client.GetAsync($"{Tasks}/{task.Id}/events")).ReadAsync<TaskEventPage>();
        var failed = Assert.Single(events.Items, e => e.Type == TaskEventTypes.Failed);
        Assert.Contains("500", failed.Data!.Value.GetProperty("error").GetString());
        Assert.True(failed.Data!.Value.GetProperty("retryable").GetBoolean());
    }

    [Theory]
    [InlineData(400)]
    [InlineData(404)]
    public async Task A_client_error_ends_the_task_dead_after_one_attempt(int status)
    {
        var agent = await CreateAsync(Hook("refuses", _receiver.Url("refuses", new Reply(status, """{"error":"bad input"}"""))));

        var task = await RunAsync(agent.Id, maxAttempts: 5);

        Assert.Equal((AgentTaskStatus.Dead, 1), (task.Status, task.Attempts));
        Assert.Contains(status.ToString(CultureInfo.InvariantCulture), task.LastError);
        Assert.Contains("bad input", task.LastError);
        Assert.Single(_receiver.CallsTo("refuses"));
    }

    [Fact]
    public async Task A_429_is_retried_until_the_attempts_run_out()
    {
        var agent = await CreateAsync(Hook("limited", _receiver.Url("limited", new Reply(429))));

        var task = await RunAsync(agent.Id, maxAttempts: 2);

        Assert.Equal((AgentTaskStatus.Dead, 2), (task.Status, task.Attempts));
        Assert.Contains("429", task.LastError);
        Assert.Equal(2, _receiver.CallsTo("limited").Count);
    }

    [Fact]
    public async Task A_receiver_that_hangs_times_out_is_retried_and_ends_dead()
    {
        var agent = await CreateAsync(Hook("hangs", _receiver.Url("hangs", new Reply(200, Hang: true))));

        var task = await RunAsync(agent.Id, maxAttempts: 2, timeoutSeconds: 1);

        Assert.Equal((AgentTaskStatus.Dead, 2), (task.Status, task.Attempts));
        Assert.Contains("Timed out", task.LastError);
        Assert.Equal(2, _receiver.CallsTo("hangs").Count);
    }

    [Fact]
    public async Task A_private_address_outside_the_allow_list_is_refused_for_good()
    {
        var agent = await CreateAsync(Hook("private", "http://10.255.255.1/hook"));

        var task = await RunAsync(agent.Id, maxAttempts: 3);

        Assert.Equal((AgentTaskStatus.Dead, 1), (task.Status, task.Attempts));
        Assert.Contains("egress guard", task.LastError);
        Assert.Contains("10.255.255.1", task.LastError);
    }

    [Fact]
    public async Task The_secret_is_shown_once_and_never_by_reads_lists_versions_or_exports()
    {
        var response = await _client.PostJsonAsync(Agents, new
        {
            name = "secretive", kind = "webhook", webhook = new { url = "https://hooks.example.com/run" },
            onComplete = new { url = "https://hooks.example.com/done", secret = Secret },
        });
        var created = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var generated = created.GetProperty("webhook").GetProperty("secret").GetString()!;
        Assert.Matches("^whsec_[0-9A-Za-z]{32}$", generated);
        Assert.Equal(Secret, created.GetProperty("onComplete").GetProperty("secret").GetString());
        var id = created.GetProperty("id").GetGuid();

        var read = JsonDocument.Parse(await Text($"{Agents}/{id}")).RootElement.GetProperty("webhook");
        Assert.Equal("""{"url":"https://hooks.example.com/run","secretSet":true}""", read.GetRawText());
        var renamed = await Text(await _client.PatchAsync($"{Agents}/{id}", HttpAssertions.Json(new { description = "renamed", webhook = new { url = "https://hooks.example.com/v2" } })));
        Assert.DoesNotContain("\"secret\"", renamed); // a change that sets no secret shows none

        var rotated = await (await _client.PatchAsync($"{Agents}/{id}", HttpAssertions.Json(new { webhook = new { url = "https://hooks.example.com/v2", secret = "rotated-secret-0123456789" } })))
            .ReadAsync<AgentResponse>();
        Assert.Equal("rotated-secret-0123456789", rotated.Webhook!.Secret);
        Assert.Null(rotated.OnComplete!.Secret);

        var export = await Text($"{Agents}/{id}/export");
        var reads = new[] { await Text($"{Agents}/{id}"), await Text(Agents), await Text($"{Agents}/{id}/versions"), await Text($"{Agents}/{id}/versions/1"), export };
        foreach (var secret in new[] { generated, Secret, "rotated-secret-0123456789" })
        {
            Assert.All(reads, text => Assert.DoesNotContain(secret, text));
        }
        Assert.All(reads, text => Assert.DoesNotContain("whsec_", text));

        var imported = await (await _client.PostJsonAsync($"{Agents}/import?name=copy", JsonDocument.Parse(export).RootElement)).ReadAsync<AgentResponse>(HttpStatusCode.Created);
        Assert.StartsWith("whsec_", imported.Webhook!.Secret);
        Assert.StartsWith("whsec_", imported.OnComplete!.Secret);
        Assert.NotEqual(generated, imported.Webhook.Secret);
    }

    [Fact]
    public async Task Secrets_and_urls_are_validated()
    {
        foreach (var (body, field) in new (object, string)[]
        {
            (new { name = "short", kind = "webhook", webhook = new { url = "https://h.example.com", secret = "too-short" } }, "webhook.secret"),
            (new { name = "long", kind = "webhook", webhook = new { url = "https://h.example.com", secret = new string('s', 201) } }, "webhook.secret"),
            (new { name = "done", kind = "tool", tool = "srv__noop", onComplete = new { url = "mailto:ops@example.com" } }, "onComplete.url"),
            (new { name = "done2", kind = "tool", tool = "srv__noop", onComplete = new { url = "https://h.example.com", secret = "x" } }, "onComplete.secret"),
        })
        {
            var errors = (await (await _client.PostJsonAsync(Agents, body)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed")).GetProperty("errors");
            Assert.True(errors.TryGetProperty(field, out _), $"no error for {field}: {errors}");
        }
    }

    [Fact]
    public async Task A_completion_webhook_is_delivered_once_per_final_task_signed_with_its_secret()
    {
        var agent = await CreateAsync(new
        {
            name = "announced", kind = "webhook",
            webhook = new { url = _receiver.Url("work", new Reply(200, """{"n":1}"""), new Reply(400, "no"), new Reply(400, "no")) },
            onComplete = new { url = _receiver.Url("done"), secret = Secret },
        });

        var succeeded = await RunAsync(agent.Id);
        var dead = await RunAsync(agent.Id, maxAttempts: 3);
        var later = await SubmitAsync(agent.Id, runAt: DateTime.UtcNow.AddHours(1));
        (await _client.PostAsync($"{Tasks}/{later}/cancel", null)).EnsureSuccessStatusCode();

        var expected = new Dictionary<Guid, string> { [succeeded.Id] = AgentTaskStatus.Succeeded, [dead.Id] = AgentTaskStatus.Dead, [later] = AgentTaskStatus.Cancelled };
        Assert.True(await HttpAssertions.EventuallyAsync(async () => await NoticesSettledAsync(agent.Id, 3), Patience), "the notices were not all delivered");
        var notices = _receiver.CallsTo("done");
        Assert.Equal(expected.Keys.Order(), notices.Select(n => Guid.Parse(n.Header("Agentry-Task-Id"))).Order());
        foreach (var notice in notices)
        {
            AssertSigned(notice, Secret);
            var body = JsonDocument.Parse(notice.Body).RootElement;
            var taskId = body.GetProperty("taskId").GetGuid();
            Assert.Equal("task.completed", body.GetProperty("type").GetString());
            Assert.Equal(expected[taskId], body.GetProperty("status").GetString());
            Assert.False(string.IsNullOrEmpty(body.GetProperty("reason").GetString()));
            Assert.NotEqual(taskId.ToString(), notice.Header("Idempotency-Key")); // the notice's own delivery id
        }
        var ofSuccess = JsonDocument.Parse(notices.Single(n => n.Header("Agentry-Task-Id") == succeeded.Id.ToString()).Body).RootElement;
        Assert.Equal("""{"n":1}""", ofSuccess.GetProperty("result").GetRawText());
        var ofDead = JsonDocument.Parse(notices.Single(n => n.Header("Agentry-Task-Id") == dead.Id.ToString()).Body).RootElement;
        Assert.Contains("400", ofDead.GetProperty("lastError").GetString());
    }

    [Fact]
    public async Task A_failing_completion_webhook_is_retried_through_the_queue()
    {
        var agent = await CreateAsync(new
        {
            name = "retried notice", kind = "webhook",
            webhook = new { url = _receiver.Url("work2") },
            onComplete = new { url = _receiver.Url("done2", new Reply(503), new Reply(200)), secret = Secret },
        });

        var task = await RunAsync(agent.Id);

        Assert.True(await HttpAssertions.EventuallyAsync(async () => await NoticesSettledAsync(agent.Id, 1), Patience), "the notice was not delivered");
        var notices = _receiver.CallsTo("done2");
        Assert.Equal(2, notices.Count);
        Assert.All(notices, n => Assert.Equal(task.Id.ToString(), n.Header("Agentry-Task-Id")));
        Assert.Single(notices.Select(n => n.Header("Idempotency-Key")).Distinct());
    }

    /// <summary>True once <paramref name="count"/> notice tasks of the agent exist and all succeeded (so no more deliveries come).</summary>
    private async Task<bool> NoticesSettledAsync(Guid agentId, int count)
    {
        var page = await (await _client.GetAsync($"{Tasks}?agentId={agentId}&limit=100")).ReadAsync<Page<TaskResponse>>();
        var notices = page.Items.Where(t => t.Kind == "notify").ToList();
        return notices.Count == count && notices.All(t => t.Status == AgentTaskStatus.Succeeded);
    }

    /// <summary>Checks <c>Agentry-Signature: t=…,v1=…</c> against an HMAC of "t.body" computed here; returns t.</summary>
    private static long AssertSigned(ReceivedCall call, string secret)
    {
        var parts = call.Header("Agentry-Signature").Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
        var signed = Encoding.ASCII.GetBytes(parts["t"] + ".").Concat(call.Body).ToArray();
        var expected = Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
        Assert.Equal(expected, parts["v1"]);
        return long.Parse(parts["t"], CultureInfo.InvariantCulture);
    }

    private static object Hook(string name, string url) => new { name, kind = "webhook", webhook = new { url, secret = Secret } };

    private async Task<AgentResponse> CreateAsync(object body) =>
        await (await _client.PostJsonAsync(Agents, body)).ReadAsync<AgentResponse>(HttpStatusCode.Created);

    private async Task<Guid> SubmitAsync(Guid agentId, object? input = null, int maxAttempts = 1, int timeoutSeconds = 10, DateTime? runAt = null) =>
        (await (await _client.PostJsonAsync(Tasks, new { agentId, input = input ?? new { }, maxAttempts, timeoutSeconds, runAt }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;

    /// <summary>Submits a task and waits for its final state.</summary>
    private async Task<TaskResponse> RunAsync(Guid agentId, object? input = null, int maxAttempts = 1, int timeoutSeconds = 10)
    {
        var id = await SubmitAsync(agentId, input, maxAttempts, timeoutSeconds);
        TaskResponse? task = null;
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            task = await (await _client.GetAsync($"{Tasks}/{id}")).ReadAsync<TaskResponse>();
            return AgentTaskStatus.IsFinal(task.Status);
        }, Patience), $"task {id} did not finish: {task?.Status}, {task?.LastError}");
        return task!;
    }

    private Task<string> Text(string url) => _client.GetStringAsync(url);

    private static Task<string> Text(HttpResponseMessage response) => response.Content.ReadAsStringAsync();
}

public sealed class WebhookSqliteFixture : SqliteFixture
{
    protected override IReadOnlyDictionary<string, string?> Extra => WebhookTaskContract.Settings;
}

public sealed class WebhookPostgresFixture : PostgresFixture
{
    protected override IReadOnlyDictionary<string, string?> Extra => WebhookTaskContract.Settings;
}

public sealed class SqliteWebhookTaskTests(WebhookSqliteFixture fixture) : WebhookTaskContract(fixture), IClassFixture<WebhookSqliteFixture>;

public sealed class PostgresWebhookTaskTests(WebhookPostgresFixture fixture) : WebhookTaskContract(fixture), IClassFixture<WebhookPostgresFixture>;
