using System.Text.Json;
using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Models;

/// <summary>A stand-in model server and an app with one provider pointed at it, fresh for every test.</summary>
public abstract class ProviderProtocolTests : IAsyncLifetime
{
    protected StandInServer Server { get; private set; } = null!;

    protected AgentryApp App { get; private set; } = null!;

    /// <summary>The routes the stand-in answers, as the real server documents them.</summary>
    protected abstract void MapRoutes(WebApplication server);

    /// <summary>The provider's settings (under <c>Agentry:Llm:Providers:0</c>) for a stand-in at <paramref name="server"/>.</summary>
    protected abstract Dictionary<string, string?> Provider(Uri server);

    public async ValueTask InitializeAsync()
    {
        Server = await StandInServer.StartAsync(MapRoutes);
        App = AgentryApp.Sqlite(Provider(Server.BaseUri).ToDictionary(s => $"Agentry:Llm:Providers:0:{s.Key}", s => s.Value));
    }

    internal ModelCatalog Catalog => App.Services.GetRequiredService<ModelCatalog>();

    internal async Task<ChatModel> ResolveAsync(string id) =>
        await Catalog.ResolveAsync(id, TestCaller.Instance, TestContext.Current.CancellationToken) ?? throw new Xunit.Sdk.XunitException($"{id} did not resolve");

    /// <summary>
    /// Asks <paramref name="id"/> for a whole (not streamed) answer, checks it is the stand-in's "Hello there" with its
    /// token counts, and returns the body of the one chat request the stand-in received at <paramref name="path"/>.
    /// </summary>
    internal async Task<JsonElement> AnswerWholeAsync(string id, string path, (long Prompt, long Completion) usage)
    {
        var model = await ResolveAsync(id);

        var response = await model.Client.GetResponseAsync("Say hello", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal("Hello there", response.Text);
        Assert.Equal(usage, (response.Usage!.InputTokenCount!.Value, response.Usage.OutputTokenCount!.Value));
        return Server.Single("POST", path).Body!.Value;
    }

    /// <summary>The role and text of each message a chat request sent.</summary>
    internal static IEnumerable<(string?, string?)> Messages(JsonElement body, Func<JsonElement, string?> text) =>
        body.GetProperty("messages").EnumerateArray().Select(m => (m.GetProperty("role").GetString(), text(m.GetProperty("content"))));

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await Server.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
