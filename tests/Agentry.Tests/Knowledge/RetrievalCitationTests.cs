using System.Net;
using System.Text.Json;
using Agentry.Chat;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Tasks;

namespace Agentry.Tests.Knowledge;

/// <summary>
/// Retrieval for agents and conversations, against the OpenAI-protocol stand-in's <c>cite</c> model (a model that answers
/// from source [1] of its prompt and cites it): the chunks that match the message go into the prompt, numbered, and the
/// stored answer lists them as citations, marking those it cites. Only the caller's workspace's collections are searched.
/// </summary>
public sealed class RetrievalCitationTests(LlmTaskFixture fixture) : IClassFixture<LlmTaskFixture>, IAsyncLifetime
{
    private const string Otters = "# Otters\n\nSea otters hold hands while they sleep so that they do not drift apart on the current.";
    private const string Kelp = "# Kelp\n\nGiant kelp grows up to half a metre a day in cold coastal water rich in nutrients.";
    private const string Question = "Why do sea otters hold hands while they sleep?";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly AgentryApp _app = fixture.App;
    private HttpClient _client = null!;
    private CollectionResponse _collection = null!;
    private DocumentResponse _otters = null!;

    public async ValueTask InitializeAsync()
    {
        _client = await _app.UserClientAsync(await _app.CreateWorkspaceAsync(), Roles.Admin);
        _collection = await _client.CreateCollectionAsync($"marine-{Guid.NewGuid():N}"[..20]);
        _otters = await _client.AddAsync(_collection.Id, "otters.md", Otters);
        var kelp = await _client.AddAsync(_collection.Id, "kelp.md", Kelp);
        Assert.Equal(DocumentStatuses.Ready, (await _client.SettledAsync(_collection.Id, _otters.Id)).Status);
        Assert.Equal(DocumentStatuses.Ready, (await _client.SettledAsync(_collection.Id, kelp.Id)).Status);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task An_agents_task_gets_the_matching_chunks_in_its_prompt_and_its_result_cites_them()
    {
        var agent = await AgentAsync(_client, new { name = "marine", kind = "llm", model = "standin/cite", systemPrompt = "You answer briefly.", knowledgeCollections = new[] { _collection.Name } });
        var before = Prompts().Count;

        var task = await RunAsync(_client, agent, Question);

        Assert.Equal(AgentTaskStatus.Succeeded, task.Status);
        var result = task.Result!.Value.Deserialize<LlmRunResult>(JsonSerializerOptions.Web)!;
        Assert.Contains("hold hands while they sleep", result.Text);
        var citations = result.Citations!;
        Assert.Equal(Enumerable.Range(1, citations.Count), citations.Select(c => c.Index));
        Assert.Equal((_otters.Id, "otters.md", _collection.Id, true), (citations[0].DocumentId, citations[0].DocumentName, citations[0].CollectionId, citations[0].Cited));
        Assert.All(citations.Skip(1), c => Assert.False(c.Cited));

        // The prompt: the system prompt, then the sources, numbered, then the message.
        var messages = Assert.Single(Prompts().Skip(before)).GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["system", "system", "user"], messages.Select(m => m.GetProperty("role").GetString()));
        var sources = LlmStandIn.Content(messages[1].GetProperty("content"));
        Assert.Contains("[1] otters.md — Otters", sources);
        Assert.Contains("Sea otters hold hands", sources);
    }

    [Fact]
    public async Task A_conversation_with_collections_stores_each_replys_citations_and_shows_them_when_read()
    {
        var created = await (await _client.PostJsonAsync("/api/v1/conversations", new { model = "standin/cite", knowledgeCollections = new[] { _collection.Id.ToString() } }))
            .ReadAsync<ConversationResponse>(HttpStatusCode.Created);
        Assert.Equal([_collection.Id], created.KnowledgeCollections);

        var exchange = await (await _client.PostJsonAsync($"/api/v1/conversations/{created.Id}/messages", new { content = Question })).ReadAsync<ExchangeResponse>();

        Assert.StartsWith("According to [1]: ", exchange.Reply.Content);
        var cited = exchange.Reply.Citations[0];
        Assert.Equal((1, _otters.Id, true), (cited.Index, cited.DocumentId, cited.Cited));
        Assert.Empty(exchange.Message.Citations);
        var read = await (await _client.GetAsync($"/api/v1/conversations/{created.Id}")).ReadAsync<ConversationDetailResponse>();
        Assert.Equal(exchange.Reply.Citations, read.Messages.Single(m => m.Id == exchange.Reply.Id).Citations);

        // A conversation with an agent takes the agent's collections.
        var agent = await AgentAsync(_client, new { name = "marine-chat", kind = "llm", model = "standin/cite", knowledgeCollections = new[] { _collection.Name } });
        var withAgent = await (await _client.PostJsonAsync("/api/v1/conversations", new { agentId = agent })).ReadAsync<ConversationResponse>(HttpStatusCode.Created);
        Assert.Equal([_collection.Id], withAgent.KnowledgeCollections);
    }

    [Fact]
    public async Task Collections_are_the_callers_workspaces_only()
    {
        await (await _client.PostJsonAsync("/api/v1/conversations", new { model = "standin/cite", knowledgeCollections = new[] { "no-such-collection" } }))
            .AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "unknown_collection");

        // Another workspace naming this collection's id finds nothing: its conversation is refused, its agent gets no sources.
        var stranger = await _app.UserClientAsync(await _app.CreateWorkspaceAsync(), Roles.Admin);
        await (await stranger.PostJsonAsync("/api/v1/conversations", new { model = "standin/cite", knowledgeCollections = new[] { _collection.Id.ToString() } }))
            .AssertProblemAsync(HttpStatusCode.UnprocessableEntity, "unknown_collection");
        var agent = await AgentAsync(stranger, new { name = "nosy", kind = "llm", model = "standin/cite", knowledgeCollections = new[] { _collection.Id.ToString() } });
        var task = await RunAsync(stranger, agent, Question);
        var result = task.Result!.Value.Deserialize<LlmRunResult>(JsonSerializerOptions.Web)!;
        Assert.Equal("No sources.", result.Text);
        Assert.Empty(result.Citations!);
    }

    private List<JsonElement> Prompts() =>
        [.. fixture.StandIn.Requests.Where(r => r.Path == "/v1/chat/completions" && r.Body?.GetProperty("model").GetString() == "cite").Select(r => r.Body!.Value)];

    private static async Task<Guid> AgentAsync(HttpClient client, object body) =>
        (await (await client.PostJsonAsync("/api/v1/agents", body)).ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();

    private static async Task<TaskResponse> RunAsync(HttpClient client, Guid agent, string message)
    {
        var id = (await (await client.PostJsonAsync("/api/v1/tasks", new { agentId = agent, input = new { message } })).ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;
        TaskResponse task = null!;
        var final = await HttpAssertions.EventuallyAsync(
            async () => AgentTaskStatus.IsFinal((task = await (await client.GetAsync($"/api/v1/tasks/{id}")).ReadAsync<TaskResponse>()).Status), Patience);
        Assert.True(final, $"task {id} is still {task.Status}");
        return task;
    }
}
