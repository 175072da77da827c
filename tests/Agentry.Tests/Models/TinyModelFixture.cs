using Agentry.Models;
using Agentry.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Models;

/// <summary>
/// An app whose provider <c>local</c> runs the tiny GGUF model in-process (<c>local/tiny</c>, with a ChatML template)
/// and whose provider <c>plain</c> runs the same weights without a template (<c>plain/untemplated</c>), one thread each.
/// </summary>
public sealed class TinyModelFixture : IAsyncLifetime
{
    public AgentryApp App { get; private set; } = null!;

    public string ModelPath { get; private set; } = null!;

    internal ModelCatalog Catalog => App.Services.GetRequiredService<ModelCatalog>();

    public ValueTask InitializeAsync()
    {
        var directory = TempFiles.Directory();
        ModelPath = Path.Combine(directory, "tiny.gguf");
        TinyGguf.Write(ModelPath);
        var untemplated = Path.Combine(directory, "untemplated.gguf");
        TinyGguf.Write(untemplated, chatTemplate: false);
        App = AgentryApp.Sqlite(LlamaCppSettings(("local", ModelPath), ("plain", untemplated)));
        return ValueTask.CompletedTask;
    }

    /// <summary>Settings for llamacpp providers, one thread each (two threads on two cores are slower and noisy).</summary>
    public static Dictionary<string, string?> LlamaCppSettings(params (string Name, string Path)[] providers)
    {
        var settings = new Dictionary<string, string?>();
        for (var i = 0; i < providers.Length; i++)
        {
            settings[$"Agentry:Llm:Providers:{i}:Name"] = providers[i].Name;
            settings[$"Agentry:Llm:Providers:{i}:Kind"] = "llamacpp";
            settings[$"Agentry:Llm:Providers:{i}:Path"] = providers[i].Path;
            settings[$"Agentry:Llm:Providers:{i}:Threads"] = "1";
        }
        return settings;
    }

    public async ValueTask DisposeAsync() => await App.DisposeAsync();
}
