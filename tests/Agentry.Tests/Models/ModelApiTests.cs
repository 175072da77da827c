using System.Net;
using System.Text.Json;
using Agentry.Identity;
using Agentry.Models;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Models;

/// <summary>An app with the tiny model in-process (<c>local</c>) and an Ollama provider whose server is down (<c>down</c>).</summary>
public sealed class ModelApiFixture : SqliteFixture
{
    private string _model = null!;

    protected override IReadOnlyDictionary<string, string?> Extra => TinyModelFixture.LlamaCppSettings(("local", _model)).With(new Dictionary<string, string?>
    {
        ["Agentry:Llm:Providers:1:Name"] = "down",
        ["Agentry:Llm:Providers:1:Kind"] = "ollama",
        ["Agentry:Llm:Providers:1:Endpoints:0"] = $"http://127.0.0.1:{RedisProcess.FreePort()}",
    });

    public override ValueTask InitializeAsync()
    {
        _model = Path.Combine(TempFiles.Directory(), "tiny.gguf");
        TinyGguf.Write(_model);
        return base.InitializeAsync();
    }
}

public sealed class ModelApiTests(ModelApiFixture fixture) : IClassFixture<ModelApiFixture>
{
    [Fact]
    public async Task Listing_models_needs_credentials()
    {
        var response = await fixture.App.Client().GetAsync("/api/v1/models");

        await response.AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Fact]
    public async Task A_provider_that_is_down_is_reported_and_the_others_are_still_listed()
    {
        var listing = await (await fixture.Client.GetAsync("/api/v1/models")).ReadAsync<ModelListResponse>();

        Assert.Equal(
            [
                new ModelResponse("local/tiny", "local", "tiny", TinyGguf.ContextLength, false),
                new ModelResponse("minilm/all-minilm-l6-v2", "minilm", "all-minilm-l6-v2", 256, false, ModelTypes.Embedding, 384),
            ],
            listing.Items);
        Assert.Equal(new ModelProviderResponse("local", "llamacpp", ModelProviderStatuses.Available, null, 1), listing.Providers[0]);
        var down = listing.Providers[1];
        Assert.Equal(("down", "ollama", ModelProviderStatuses.Unavailable, 0), (down.Name, down.Kind, down.Status, down.ModelCount));
        Assert.False(string.IsNullOrWhiteSpace(down.Error));
    }

    [Fact]
    public async Task Readiness_is_degraded_not_unhealthy_while_a_model_server_is_down()
    {
        var ready = await fixture.App.Client().GetAsync("/health/ready");

        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("degraded", body.GetProperty("status").GetString());
        var models = body.GetProperty("checks").GetProperty("models");
        Assert.Equal("degraded", models.GetProperty("status").GetString());
        Assert.StartsWith("down: ", models.GetProperty("description").GetString());
    }

    [Fact]
    public async Task An_api_key_needs_the_chat_scope()
    {
        var workspace = await fixture.App.CreateWorkspaceAsync();
        var chat = fixture.App.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.Chat));
        var agents = fixture.App.KeyClient(await AgentryApp.CreateApiKeyAsync(fixture.Client, workspace, ApiKeyScopes.AgentsRead));

        var listing = await (await chat.GetAsync("/api/v1/models")).ReadAsync<ModelListResponse>();
        Assert.Equal(["local/tiny", "minilm/all-minilm-l6-v2"], listing.Items.Select(m => m.Id));
        await (await agents.GetAsync("/api/v1/models")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
    }

    [Fact]
    public async Task The_endpoint_is_documented()
    {
        var paths = JsonDocument.Parse(await fixture.Client.GetStringAsync("/openapi/v1.json")).RootElement.GetProperty("paths");

        var get = paths.GetProperty("/api/v1/models").GetProperty("get");
        Assert.Equal("ListModels", get.GetProperty("operationId").GetString());
        Assert.True(get.GetProperty("responses").TryGetProperty("401", out _));
    }
}

public sealed class NoModelTests
{
    [Fact]
    public async Task Without_providers_there_are_no_chat_models_and_no_model_check_but_the_embedding_model()
    {
        await using var app = AgentryApp.Sqlite();
        var admin = await app.AdminClientAsync();

        var listing = await (await admin.GetAsync("/api/v1/models")).ReadAsync<ModelListResponse>();

        Assert.Equal(ModelTypes.Embedding, Assert.Single(listing.Items).Type);
        Assert.Empty(listing.Providers);
        var ready = JsonDocument.Parse(await admin.GetStringAsync("/health/ready")).RootElement;
        Assert.False(ready.GetProperty("checks").TryGetProperty("models", out _));
    }

    [Theory]
    [InlineData("Kind", "vllm", "Agentry:Llm:Providers:0:Kind")]
    [InlineData("Path", "missing.gguf", "Agentry:Llm:Providers:0:Path")]
    [InlineData("Name", "Not A Name", "Agentry:Llm:Providers:0:Name")]
    public async Task A_bad_provider_setting_stops_start_up_with_one_line_naming_the_key(string setting, string value, string key)
    {
        var directory = TempFiles.Directory();
        var model = Path.Combine(directory, "tiny.gguf");
        TinyGguf.Write(model);
        var variables = new Dictionary<string, string>
        {
            ["Agentry__Llm__Providers__0__Name"] = "local",
            ["Agentry__Llm__Providers__0__Kind"] = "llamacpp",
            ["Agentry__Llm__Providers__0__Path"] = model,
        };
        variables[$"Agentry__Llm__Providers__0__{setting}"] = value;
        await using var agentry = AgentryProcess.Start(directory, variables, "--urls", $"http://127.0.0.1:{RedisProcess.FreePort()}");

        Assert.Equal(2, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(agentry.Stderr, l => l.Length > 0);
        Assert.StartsWith("agentry: configuration error:", line);
        Assert.Contains(key, line);
    }
}
