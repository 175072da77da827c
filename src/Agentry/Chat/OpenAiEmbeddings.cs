using System.ClientModel;
using System.Runtime.InteropServices;
using System.Text.Json;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Models;
using Agentry.Usage;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.AI;

namespace Agentry.Chat;

/// <summary><c>POST /v1/embeddings</c>: OpenAI's Embeddings API over the configured embedding model.</summary>
internal static class OpenAiEmbeddings
{
    /// <summary>The most inputs one request may carry (OpenAI's own limit).</summary>
    public const int MaxInputs = 2048;

    internal static async Task<Results<Ok<OpenAiEmbeddingList>, ProblemHttpResult>> CreateAsync(
        OpenAiEmbeddingRequest request, CurrentWorkspace workspace, Caller caller, EmbeddingModels models, TokenBudgets budgets,
        UsageLedger ledger, TimeProvider clock, CancellationToken ct)
    {
        if (Read(request, models, out var inputs) is { } invalid)
        {
            return invalid;
        }
        // Metered like chat: the workspace's (and the key's) daily token budget is checked first, the call recorded after.
        var meter = ModelCaller.Of(caller, workspace.Id);
        await budgets.CheckAsync(meter, ct);
        var started = clock.GetTimestamp();
        var at = clock.UtcNow();
        GeneratedEmbeddings<Embedding<float>> embeddings;
        try
        {
            embeddings = await models.GenerateAsync(inputs, ct);
        }
        catch (Exception ex) when (UpstreamStatus(ex) is { } status)
        {
            // The model's server judged the request: what it refused is the caller's to fix; anything else is ours.
            return status is 400 or 413 or 422
                ? OpenAiErrors.Invalid("input", $"The embedding server refused the input: {ex.Message}")
                : throw new DependencyUnavailableException($"The embedding server answered {status}: {ex.Message}", ex);
        }
        var dimensions = embeddings[0].Vector.Length;
        if (request.Dimensions is { } wanted && wanted != dimensions)
        {
            return Dimensions(models, dimensions);
        }
        var base64 = request.EncodingFormat == "base64";
        var data = embeddings.Select((e, i) => new OpenAiEmbedding("embedding", i, base64 ? Base64(e.Vector) : e.Vector.ToArray())).ToList();
        var tokens = embeddings.Usage?.InputTokenCount ?? inputs.Sum(Estimate);
        var (kind, principal) = meter.Principal;
        await ledger.RecordAsync(new UsageRecord
        {
            Id = Ids.New(), WorkspaceId = meter.WorkspaceId, At = at, Day = DateOnly.FromDateTime(at), Model = models.Id,
            PrincipalKind = kind, PrincipalId = principal, PromptTokens = tokens, DurationMs = (long)clock.GetElapsedTime(started).TotalMilliseconds,
            Estimated = embeddings.Usage?.InputTokenCount is null,
        });
        return TypedResults.Ok(new OpenAiEmbeddingList("list", data, models.Id, new OpenAiEmbeddingUsage(tokens, tokens)));
    }

    private static ProblemHttpResult? Read(OpenAiEmbeddingRequest request, EmbeddingModels models, out List<string> inputs)
    {
        inputs = [];
        if (string.IsNullOrWhiteSpace(request.Model))
        {
            return OpenAiErrors.Invalid("model", "The request names no model; GET /v1/models lists them.");
        }
        if (request.Model != models.Id)
        {
            return OpenAiErrors.ModelNotFound(request.Model, $"the embedding model is '{models.Id}'.");
        }
        if (request.EncodingFormat is not (null or "float" or "base64"))
        {
            return OpenAiErrors.Invalid("encoding_format", "encoding_format must be 'float' or 'base64'.");
        }
        if (request.Dimensions is { } wanted && (wanted < 1 || models.Dimensions is { } known && wanted != known))
        {
            return Dimensions(models, models.Dimensions);
        }
        switch (request.Input)
        {
            case { ValueKind: JsonValueKind.String } one:
                inputs.Add(one.GetString()!);
                break;
            case { ValueKind: JsonValueKind.Array } many when many.EnumerateArray().All(i => i.ValueKind == JsonValueKind.String):
                inputs.AddRange(many.EnumerateArray().Select(i => i.GetString()!));
                break;
            default:
                return OpenAiErrors.Invalid("input", "input must be a string or an array of strings (token arrays are not accepted).");
        }
        if (inputs.Count is 0 or > MaxInputs)
        {
            return OpenAiErrors.Invalid("input", $"input must hold 1 to {MaxInputs} texts; it holds {inputs.Count}.");
        }
        for (var i = 0; i < inputs.Count; i++)
        {
            var field = request.Input!.Value.ValueKind == JsonValueKind.String ? "input" : $"input[{i}]";
            if (string.IsNullOrWhiteSpace(inputs[i]))
            {
                return OpenAiErrors.Invalid(field, "An input must not be empty.");
            }
            if (models.Tokens is { } tokens && tokens.CountTokens(inputs[i]) is var count && count > tokens.MaxInputTokens)
            {
                return OpenAiErrors.InputTooLong(field,
                    $"{field} is {count} tokens; the model '{models.Id}' reads at most {tokens.MaxInputTokens}. Split it into smaller pieces.");
            }
        }
        return null;
    }

    private static ProblemHttpResult Dimensions(EmbeddingModels models, int? dimensions) => OpenAiErrors.Invalid("dimensions",
        dimensions is { } known
            ? $"The model '{models.Id}' gives {known}-dimensional vectors and cannot give others; leave dimensions out or set it to {known}."
            : "dimensions must be at least 1.");

    /// <summary>OpenAI's base64 form: the vector's 32-bit floats, little-endian (the byte order of every platform .NET runs on here).</summary>
    private static string Base64(ReadOnlyMemory<float> vector) => Convert.ToBase64String(MemoryMarshal.AsBytes(vector.Span));

    /// <summary>A server that reports no token count: the same estimate chat uses for such servers (UTF-8 bytes / 3).</summary>
    private static long Estimate(string text) => (System.Text.Encoding.UTF8.GetByteCount(text) + 2) / 3;

    /// <summary>The 4xx status an embedding server answered with, as HttpClient or the OpenAI SDK (around it) reports it.</summary>
    private static int? UpstreamStatus(Exception exception)
    {
        for (var ex = exception; ex is not null; ex = ex.InnerException)
        {
            switch (ex)
            {
                case HttpRequestException { StatusCode: { } status } when (int)status is >= 400 and < 500:
                    return (int)status;
                case ClientResultException { Status: >= 400 and < 500 } refused:
                    return refused.Status;
            }
        }
        return null;
    }
}
