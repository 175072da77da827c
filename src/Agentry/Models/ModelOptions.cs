using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Agentry.Models;

/// <summary>The chat model providers an operator configured. Section <c>Agentry:Llm</c>; none configured means no models.</summary>
public sealed class ModelOptions
{
    public const string SectionName = "Agentry:Llm";

    public List<ModelProviderOptions> Providers { get; set; } = [];

    /// <summary>How long a provider's model list is reused before it is asked again.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Agentry:Llm:CatalogDuration must be between 00:00:01 and 01:00:00.")]
    public TimeSpan CatalogDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a provider that failed to list its models is reported down before it is asked again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00", ErrorMessage = "Agentry:Llm:FailureDuration must be between 00:00:00.100 and 00:10:00.")]
    public TimeSpan FailureDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long listing one provider's models may take (all its endpoints together).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00", ErrorMessage = "Agentry:Llm:ListTimeout must be between 00:00:00.100 and 00:05:00.")]
    public TimeSpan ListTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long opening a connection to a model server may take; generation itself may take much longer.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Agentry:Llm:ConnectTimeout must be between 00:00:00.100 and 00:01:00.")]
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one chat call may take in all, first token to last: long, since long answers are not failures.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00", ErrorMessage = "Agentry:Llm:GenerationTimeout must be between 00:00:00.100 and 1.00:00:00.")]
    public TimeSpan GenerationTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long an endpoint whose circuit breaker opened is left out before one request tries it again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00", ErrorMessage = "Agentry:Llm:BreakDuration must be between 00:00:00.500 and 01:00:00.")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The calls an endpoint must have had in the last 30 s before its breaker may open; it opens when half of them
    /// failed to connect or answered 5xx.
    /// </summary>
    [Range(2, 10_000, ErrorMessage = "Agentry:Llm:BreakerMinimumThroughput must be between 2 and 10000.")]
    public int BreakerMinimumThroughput { get; set; } = 2;

    /// <summary>Answers to deterministic requests (temperature 0) kept and served again; off by default.</summary>
    public ResponseCacheOptions ResponseCache { get; set; } = new();
}

/// <summary>The deterministic-request cache, section <c>Agentry:Llm:ResponseCache</c>.</summary>
public sealed class ResponseCacheOptions
{
    public bool Enabled { get; set; }

    /// <summary>How long an answer is served again (from memory, and from Redis on every node when it is configured).</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>One model provider: a server kind with its endpoints, or a GGUF file run in-process.</summary>
public sealed class ModelProviderOptions
{
    public const string Ollama = "ollama";
    public const string OpenAi = "openai";
    public const string LlamaCpp = "llamacpp";

    /// <summary>The first part of a model id (<c>local/tiny</c>): lower-case letters, digits, '.', '_' or '-'.</summary>
    public string Name { get; set; } = "";

    /// <summary><c>ollama</c>, <c>openai</c> (any OpenAI-compatible server) or <c>llamacpp</c> (in-process).</summary>
    public string Kind { get; set; } = "";

    /// <summary>
    /// HTTP kinds: the server's base URLs; chats go round robin over the healthy ones and fail over to the next. Ollama: <c>http://host:11434</c>;
    /// OpenAI-compatible: the API base as OpenAI clients take it, <c>http://host:8000/v1</c>. With <see cref="ConsulService"/>
    /// they are optional: the fall-back used until Consul first answers and whenever it lists no passing instance.
    /// </summary>
    public List<string> Endpoints { get; set; } = [];

    /// <summary>
    /// HTTP kinds: a Consul service whose passing instances are this provider's endpoints (<c>ollama</c>), kept current with
    /// blocking queries to the agent at <c>Agentry:Consul:Address</c>.
    /// </summary>
    public string? ConsulService { get; set; }

    /// <summary>With <see cref="ConsulService"/>: the path after each instance's address and port (<c>/v1</c> for OpenAI-compatible servers).</summary>
    public string? ConsulPath { get; set; }

    /// <summary>With <see cref="ConsulService"/>: <c>http</c> (the default) or <c>https</c>.</summary>
    public string ConsulScheme { get; set; } = "http";

    /// <summary>OpenAI-compatible servers only: sent as <c>Authorization: Bearer</c>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>llamacpp only: the GGUF file; the model is named after the file (<c>tiny.gguf</c> → <c>tiny</c>).</summary>
    public string? Path { get; set; }

    /// <summary>llamacpp only: the context window; unset means the one the model was trained with.</summary>
    public int? ContextSize { get; set; }

    /// <summary>llamacpp only: CPU threads one generation uses.</summary>
    public int? Threads { get; set; }

    /// <summary>The model name a llamacpp provider offers.</summary>
    internal string FileModelName => System.IO.Path.GetFileNameWithoutExtension(Path ?? "");
}

/// <summary>Rules across fields; <paramref name="configuration"/> tells whether a Consul agent is configured (section <c>Agentry:Consul</c>).</summary>
internal sealed partial class ModelOptionsValidator(IConfiguration configuration) : IValidateOptions<ModelOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelOptions options)
    {
        var errors = new List<string>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.Providers.Count; i++)
        {
            var provider = options.Providers[i];
            var key = $"{ModelOptions.SectionName}:Providers:{i}";
            if (!ProviderName().IsMatch(provider.Name))
            {
                errors.Add($"{key}:Name is '{provider.Name}'; it must be 1-40 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.");
            }
            else if (!names.Add(provider.Name))
            {
                errors.Add($"{key}:Name '{provider.Name}' is used by another provider; names must be unique.");
            }
            switch (provider.Kind)
            {
                case ModelProviderOptions.Ollama or ModelProviderOptions.OpenAi:
                    CheckEndpoints(provider, key, errors);
                    break;
                case ModelProviderOptions.LlamaCpp:
                    CheckFile(provider, key, errors);
                    break;
                default:
                    errors.Add($"{key}:Kind is '{provider.Kind}'; allowed: ollama, openai, llamacpp.");
                    break;
            }
        }
        if (options.ResponseCache.Duration < TimeSpan.FromSeconds(1) || options.ResponseCache.Duration > TimeSpan.FromDays(30))
        {
            errors.Add($"{ModelOptions.SectionName}:ResponseCache:Duration is {options.ResponseCache.Duration}; it must be between 00:00:01 and 30.00:00:00.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private void CheckEndpoints(ModelProviderOptions provider, string key, List<string> errors)
    {
        ConsulDiscoveryRules.CheckEndpoints(key, $"kind {provider.Kind}", provider.Endpoints,
            provider.ConsulService, provider.ConsulPath, provider.ConsulScheme, configuration, errors);
        if (provider.Path is not null || provider.ContextSize is not null || provider.Threads is not null)
        {
            errors.Add($"{key}: Path, ContextSize and Threads apply to kind llamacpp only.");
        }
        if (provider.ApiKey is not null && provider.Kind != ModelProviderOptions.OpenAi)
        {
            errors.Add($"{key}:ApiKey applies to kind openai only.");
        }
    }

    private static void CheckFile(ModelProviderOptions provider, string key, List<string> errors)
    {
        if (string.IsNullOrWhiteSpace(provider.Path))
        {
            errors.Add($"{key}:Path must name a GGUF file for kind llamacpp.");
        }
        else if (!File.Exists(provider.Path))
        {
            errors.Add($"{key}:Path '{provider.Path}' does not exist or is not a file.");
        }
        if (provider.ContextSize is < 16 or > 1_048_576)
        {
            errors.Add($"{key}:ContextSize must be between 16 and 1048576.");
        }
        if (provider.Threads is < 1 or > 256)
        {
            errors.Add($"{key}:Threads must be between 1 and 256.");
        }
        if (provider.Endpoints.Count > 0 || provider.ApiKey is not null || provider.ConsulService is not null || provider.ConsulPath is not null)
        {
            errors.Add($"{key}: Endpoints, ApiKey, ConsulService and ConsulPath apply to kinds ollama and openai only.");
        }
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,39}$")]
    private static partial Regex ProviderName();

}

/// <summary>The settings of endpoints discovered through Consul, for model providers and the embedding server alike.</summary>
internal static partial class ConsulDiscoveryRules
{
    /// <summary>Endpoints, or a Consul service to discover them (then the endpoints are the fall-back); each an http(s) URL.</summary>
    public static void CheckEndpoints(
        string key, string what, IReadOnlyList<string> endpoints, string? service, string? path, string scheme, IConfiguration configuration, List<string> errors)
    {
        if (service is not null)
        {
            Check(key, service, path, scheme, configuration, errors);
        }
        else if (endpoints.Count == 0)
        {
            errors.Add($"{key}:Endpoints needs at least one http(s) URL for {what} (or {key}:ConsulService to discover them).");
        }
        if (service is null && path is not null)
        {
            errors.Add($"{key}:ConsulPath applies only with {key}:ConsulService.");
        }
        for (var e = 0; e < endpoints.Count; e++)
        {
            if (!Uri.TryCreate(endpoints[e], UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                errors.Add($"{key}:Endpoints:{e} is '{endpoints[e]}'; it must be an absolute http or https URL.");
            }
        }
    }

    private static void Check(string key, string service, string? path, string scheme, IConfiguration configuration, List<string> errors)
    {
        if (!ConsulServiceName().IsMatch(service))
        {
            errors.Add($"{key}:ConsulService is '{service}'; it must be a Consul service name: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit.");
        }
        if (configuration[$"{Mesh.ConsulOptions.SectionName}:Address"] is not { Length: > 0 })
        {
            errors.Add($"{key}:ConsulService needs {Mesh.ConsulOptions.SectionName}:Address: the Consul agent to ask for the instances of '{service}'.");
        }
        if (path is not null && (!path.StartsWith('/') || !Uri.TryCreate("http://host" + path, UriKind.Absolute, out _)))
        {
            errors.Add($"{key}:ConsulPath is '{path}'; it must be a URL path starting with '/', like /v1.");
        }
        if (scheme is not ("http" or "https"))
        {
            errors.Add($"{key}:ConsulScheme is '{scheme}'; allowed: http, https.");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex ConsulServiceName();
}
