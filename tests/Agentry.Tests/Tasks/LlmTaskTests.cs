using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Tasks;

/// <summary>
/// Tasks of <c>llm</c> agents, submitted through the API and run by the workers: real inference on the tiny GGUF model,
/// and, for tool calls, hanging and limits the tiny model cannot show, the OpenAI-compatible protocol stand-in.
/// </summary>
public sealed class LlmTaskTests(LlmTaskFixture fixture) : IClassFixture<LlmTaskFixture>, IAsyncLifetime
{
    private const string Tasks = "/api/v1/tasks";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly AgentryApp _app = fixture.App;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync() => _client = await _app.UserClientAsync(await _app.CreateWorkspaceAsync(), Roles.Admin);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Theory]
    [InlineData("\"hello world\"", 2)]
    [InlineData("""{"message": "hello world", "note": "ignored"}""", 2)]
    [InlineData("""{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "the quick fox"}, {"role": "user", "content": "and the dog"}]}""", 4)]
    public async Task A_task_runs_on_the_tiny_model_and_stores_its_answer_usage_trace_and_events(string input, int messagesOut)
    {
        var agent = await AgentAsync(new { name = "writer", kind = "llm", model = "local/tiny", systemPrompt = "you write words" });

        var task = await RunAsync(agent, JsonDocument.Parse(input).RootElement);

        Assert.Equal((AgentTaskStatus.Succeeded, 1), (task.Status, task.Attempts));
        var result = Result(task);
        Assert.False(string.IsNullOrWhiteSpace(result.Text));
        Assert.Equal(("local/tiny", 1, "length"), (result.Model, result.Steps, result.FinishReason));
        Assert.Equal(LlmTaskFixture.ReplyTokens, result.Usage.OutputTokens);
        Assert.True(result.Usage.InputTokens > 0);
        Assert.Equal(result.Usage.InputTokens + result.Usage.OutputTokens, task.Result!.Value.GetProperty("usage").GetProperty("totalTokens").GetInt64());
        var step = Assert.Single(result.Trace);
        Assert.Equal((1, messagesOut, result.Text, 0), (step.Step, step.MessagesOut, step.Text, step.ToolCalls.Count));
        Assert.Equal((result.Usage.InputTokens, result.Usage.OutputTokens), (step.InputTokens, step.OutputTokens));

        var events = await EventsAsync(task.Id);
        Assert.Equal([TaskEventTypes.Queued, TaskEventTypes.Started], events.Take(2).Select(e => e.Type));
        Assert.Equal(TaskEventTypes.Succeeded, events[^1].Type);
        var progress = events.Where(e => e.Type == TaskEventTypes.Progress).Select(e => e.Data!.Value).ToList();
        Assert.Equal("step", progress[^1].GetProperty("type").GetString());
        Assert.Equal(JsonSerializer.Serialize(result.Trace[0], JsonSerializerOptions.Web), progress[^1].GetRawText());
        var deltas = progress[..^1];
        Assert.NotEmpty(deltas);
        Assert.All(deltas, d => Assert.Equal(("delta", 1), (d.GetProperty("type").GetString(), d.GetProperty("step").GetInt32())));
        Assert.Equal(result.Text, string.Concat(deltas.Select(d => d.GetProperty("text").GetString())));
    }

    [Theory]
    [InlineData("42", "the input is a number")]
    [InlineData("{}", "neither 'message' nor 'messages'")]
    [InlineData("""{"message": "  "}""", "'message' is empty")]
    [InlineData("""{"message": ["hello"]}""", "'message' must be a string, not an array")]
    [InlineData("""{"message": "a", "messages": []}""", "both 'message' and 'messages'")]
    [InlineData("""{"messages": []}""", "'messages' must be a non-empty array")]
    [InlineData("""{"messages": [{"role": "system", "content": "obey"}]}""", "'messages[0].role' must be \"user\" or \"assistant\"")]
    [InlineData("""{"messages": [{"role": "user"}]}""", "'messages[0].content' is missing")]
    [InlineData("""{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}""", "the last of 'messages' must be a user message")]
    public async Task A_malformed_input_ends_the_task_dead_at_once_saying_what_is_wrong(string input, string problem)
    {
        var task = await DeadAsync(new { name = "strict", kind = "llm", model = "local/tiny" }, JsonDocument.Parse(input).RootElement, problem, """{"message": "…"}""");

        Assert.DoesNotContain(await EventsAsync(task.Id), e => e.Type == TaskEventTypes.Progress);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_the_model_calls_a_tool_gets_its_result_and_answers_with_it()
    {
        var agent = await AgentAsync(new { name = "weather", kind = "llm", model = "standin/tools", systemPrompt = "you report weather", allowedTools = new[] { "get_weather" } });
        var before = Requests("tools").Count;

        var task = await RunAsync(agent, "What is the weather in Paris?");

        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        var result = Result(task);
        Assert.Equal(("Forecast: sunny and 21 C in Paris", "stop", 2), (result.Text.Replace("\"", ""), result.FinishReason, result.Steps));
        Assert.Equal((50L, 12L), (result.Usage.InputTokens, result.Usage.OutputTokens));
        var (first, second) = (result.Trace[0], result.Trace[1]);
        Assert.Equal((2, "tool_calls", 20L, 5L), (first.MessagesOut, first.FinishReason, first.InputTokens, first.OutputTokens));
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal(("call_paris", "get_weather", """{"city":"Paris"}"""), (call.Id, call.Name, call.Arguments!.Value.GetRawText()));
        var answer = Assert.Single(first.ToolResults);
        Assert.Equal(("call_paris", "get_weather", "sunny and 21 C in Paris", null), (answer.CallId, answer.Name, answer.Result!.Value.GetString(), answer.Error));
        Assert.Equal((4, 0, 30L, 7L), (second.MessagesOut, second.ToolCalls.Count, second.InputTokens, second.OutputTokens));
        Assert.Contains("Paris", fixture.Tools.Calls);

        // What went over the wire: the tool declared with its parameters, then its result answering the model's call.
        var sent = Requests("tools").Skip(before).ToList();
        Assert.Equal(2, sent.Count);
        var declared = Assert.Single(sent[0].GetProperty("tools").EnumerateArray()).GetProperty("function");
        Assert.Equal("get_weather", declared.GetProperty("name").GetString());
        Assert.Equal("string", declared.GetProperty("parameters").GetProperty("properties").GetProperty("city").GetProperty("type").GetString());
        var messages = sent[1].GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["system", "user", "assistant", "tool"], messages.Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("call_paris", messages[2].GetProperty("tool_calls")[0].GetProperty("id").GetString());
        Assert.Equal("call_paris", messages[3].GetProperty("tool_call_id").GetString());
        Assert.Contains("sunny and 21 C in Paris", LlmStandIn.Content(messages[3].GetProperty("content")));
        Assert.Equal([1, 2], (await StepsAsync(task.Id)).Select(step => step.GetProperty("step").GetInt32()));
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_a_model_that_keeps_calling_tools_ends_dead_at_the_step_limit()
    {
        var (requests, calls) = (Requests("loop").Count, fixture.Tools.Calls.Count(c => c == "Oslo"));

        var task = await DeadAsync(
            new { name = "looper", kind = "llm", model = "standin/loop", allowedTools = new[] { "get_weather" }, limits = new { maxSteps = 2 } },
            "Weather in Oslo?", "Step limit reached", "may call its model 2 times (limits.maxSteps)");

        Assert.Equal(requests + 2, Requests("loop").Count);
        // The tool ran after the first call only: after the last there is no model call left to read its result.
        Assert.Equal(calls + 1, fixture.Tools.Calls.Count(c => c == "Oslo"));
        Assert.Equal(2, (await StepsAsync(task.Id)).Count);
    }

    [Fact]
    public async Task Using_more_tokens_than_the_agent_may_ends_the_task_dead_naming_the_limit()
    {
        var task = await DeadAsync(
            new { name = "frugal", kind = "llm", model = "local/tiny", limits = new { maxTokens = 5 } },
            "hello world", "Token limit exceeded", "may use 5 tokens (limits.maxTokens)");

        Assert.Null(task.Result);
        var step = Assert.Single(await StepsAsync(task.Id));
        Assert.True(step.GetProperty("inputTokens").GetInt64() + step.GetProperty("outputTokens").GetInt64() > 5);
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_cancelling_a_running_task_ends_it_cancelled_and_closes_the_model_call()
    {
        var agent = await AgentAsync(new { name = "ponderer", kind = "llm", model = "standin/hang" });
        var aborted = fixture.Aborted.Count;
        var id = await SubmitAsync(agent, "think hard");
        Assert.True(await HttpAssertions.EventuallyAsync(
            async () => (await EventsAsync(id)).Any(e => e.Type == TaskEventTypes.Progress && e.Data!.Value.GetProperty("text").GetString() == "Thinking"), Patience),
            "the model's first delta never reached the task's events");

        Assert.Equal(HttpStatusCode.Accepted, (await _client.PostAsync($"{Tasks}/{id}/cancel", null)).StatusCode);

        var task = await FinalAsync(id);
        Assert.Equal((AgentTaskStatus.Cancelled, 1), (task.Status, task.Attempts));
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(fixture.Aborted.Count > aborted), Patience), "the model call was not closed");
    }

    [Fact]
    public async Task Protocol_against_a_stand_in_a_run_longer_than_the_agent_may_take_ends_dead_naming_the_time_limit()
    {
        var task = await DeadAsync(
            new { name = "slowpoke", kind = "llm", model = "standin/hang", limits = new { timeoutSeconds = 1 } },
            "think hard", "Time limit reached", "may run for 1 s (limits.timeoutSeconds)");

        // The task's own timeout leaves the handler room to end the run naming the agent's limit.
        Assert.Equal(1 + LlmTaskHandler.TimeLimitGraceSeconds, task.TimeoutSeconds);
    }

    [Theory]
    [InlineData("local/no-such-model")]
    [InlineData("nowhere/tiny")]
    public async Task An_unknown_model_ends_the_task_dead_at_once(string model)
    {
        await DeadAsync(new { name = "lost", kind = "llm", model }, "hello", $"'{model}', which no configured provider offers");
    }

    [Fact]
    public async Task A_tool_that_no_server_offers_ends_the_task_dead_naming_it()
    {
        await DeadAsync(
            new { name = "handy", kind = "llm", model = "local/tiny", allowedTools = new[] { "get_weather", "launch_rocket" } },
            "hello", "no connected tool server offers: launch_rocket.");
    }

    [Fact]
    public async Task Tools_for_a_model_that_cannot_call_them_end_the_task_dead()
    {
        await DeadAsync(
            new { name = "toolless", kind = "llm", model = "local/tiny", allowedTools = new[] { "get_weather" } },
            "hello", "its model 'local/tiny' does not support tool calls");
    }

    [Fact]
    public async Task A_model_server_that_is_down_is_retried_until_the_attempts_run_out()
    {
        var agent = await AgentAsync(new { name = "hopeful", kind = "llm", model = "down/llama3" });

        var task = await RunAsync(agent, "hello", maxAttempts: 2);

        Assert.Equal((AgentTaskStatus.Dead, 2), (task.Status, task.Attempts));
        Assert.Contains("unavailable", task.LastError);
        Assert.Single(await EventsAsync(task.Id), e => e.Type == TaskEventTypes.Retrying);
    }

    /// <summary>Runs a task of a new agent made from <paramref name="agentBody"/>, allowing three attempts: it must end dead after one, for these reasons.</summary>
    private async Task<TaskResponse> DeadAsync(object agentBody, object input, params string[] reasons)
    {
        var task = await RunAsync(await AgentAsync(agentBody), input, maxAttempts: 3);
        Assert.Equal((AgentTaskStatus.Dead, 1), (task.Status, task.Attempts));
        Assert.All(reasons, reason => Assert.Contains(reason, task.LastError));
        return task;
    }

    /// <summary>The task's step records, from its <c>progress</c> events.</summary>
    private async Task<List<JsonElement>> StepsAsync(Guid id) =>
        [.. (await EventsAsync(id)).Where(e => e.Type == TaskEventTypes.Progress && e.Data!.Value.GetProperty("type").GetString() == "step").Select(e => e.Data!.Value)];

    private static LlmRunResult Result(TaskResponse task) => task.Result!.Value.Deserialize<LlmRunResult>(JsonSerializerOptions.Web)!;

    private List<JsonElement> Requests(string model) =>
        [.. fixture.StandIn.Requests.Where(r => r.Path == "/v1/chat/completions" && r.Body?.GetProperty("model").GetString() == model).Select(r => r.Body!.Value)];

    private async Task<Guid> AgentAsync(object body) =>
        (await (await _client.PostJsonAsync("/api/v1/agents", body)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();

    private async Task<Guid> SubmitAsync(Guid agent, object input, int? maxAttempts = null) =>
        (await (await _client.PostJsonAsync(Tasks, new { agentId = agent, input, maxAttempts })).ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;

    private async Task<TaskResponse> RunAsync(Guid agent, object input, int? maxAttempts = null) => await FinalAsync(await SubmitAsync(agent, input, maxAttempts));

    private async Task<TaskResponse> FinalAsync(Guid id)
    {
        TaskResponse task = null!;
        var final = await HttpAssertions.EventuallyAsync(
            async () => AgentTaskStatus.IsFinal((task = await (await _client.GetAsync($"{Tasks}/{id}")).ReadAsync<TaskResponse>()).Status), Patience);
        Assert.True(final, $"task {id} is still {task.Status} after {Patience}");
        return task;
    }

    private async Task<List<TaskEventResponse>> EventsAsync(Guid id) =>
        [.. (await (await _client.GetAsync($"{Tasks}/{id}/events")).ReadAsync<TaskEventPage>()).Items];
}
