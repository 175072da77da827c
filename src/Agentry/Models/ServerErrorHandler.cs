using System.Text.Json;

namespace Agentry.Models;

/// <summary>
/// Turns an embedding server's error answer into an <see cref="HttpRequestException"/> that carries the status and the
/// server's own message, whichever library made the call. OllamaSharp otherwise reports Ollama's <c>{"error": …}</c>
/// answers without their status, so a refused input (4xx, the caller's to fix) and a failing server (5xx, the next
/// endpoint's turn) could not be told apart.
/// </summary>
internal sealed class ServerErrorHandler : DelegatingHandler
{
    /// <summary>The most of an error body that is read for its message.</summary>
    private const int MaxErrorBytes = 16 * 1024;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var message = await MessageAsync(response, cancellationToken);
            throw new HttpRequestException($"{(int)response.StatusCode} {response.ReasonPhrase}: {message}", null, response.StatusCode);
        }
    }

    /// <summary>Ollama's <c>{"error": "…"}</c>, OpenAI's <c>{"error": {"message": "…"}}</c>, or the start of the body as text.</summary>
    private static async Task<string> MessageAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var buffer = new byte[MaxErrorBytes];
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        var length = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, ct);
        try
        {
            using var json = JsonDocument.Parse(buffer.AsMemory(0, length));
            if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("error", out var error))
            {
                if (error.ValueKind == JsonValueKind.String)
                {
                    return error.GetString()!;
                }
                if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var text) && text.ValueKind == JsonValueKind.String)
                {
                    return text.GetString()!;
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: the text itself says what went wrong.
        }
        return System.Text.Encoding.UTF8.GetString(buffer, 0, Math.Min(length, 500)).Trim();
    }
}
