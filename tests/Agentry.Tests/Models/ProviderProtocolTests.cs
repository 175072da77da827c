using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
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
        await Catalog.ResolveAsync(id, TestContext.Current.CancellationToken) ?? throw new Xunit.Sdk.XunitException($"{id} did not resolve");

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await Server.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
