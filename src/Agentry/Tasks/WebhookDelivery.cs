using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Identity;

namespace Agentry.Tasks;

/// <summary>
/// Posts a JSON body to a URL a user configured, through the egress guard, signed so the receiver can
/// tell it came from Agentry and is fresh. The headers:
/// <list type="bullet">
/// <item><c>Agentry-Signature: t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256&gt;</c>, the HMAC keyed with the UTF-8
/// bytes of the hook's secret over the ASCII timestamp, a dot, and the exact body bytes (<c>t.body</c>).
/// A receiver recomputes it, compares in constant time, and refuses old timestamps (e.g. over 5 minutes).</item>
/// <item><c>Agentry-Task-Id</c>: the task the call is about.</item>
/// <item><c>Idempotency-Key</c>: the same on every attempt of one delivery, since delivery is at least once.</item>
/// </list>
/// The answer maps onto the queue's rules: 2xx succeeds, 408, 429, 5xx, timeouts and connection
/// errors are retried, any other status and an egress refusal end the task.
/// </summary>
internal sealed class WebhookDelivery(IHttpClientFactory clients, TimeProvider clock)
{
    public const string SignatureHeader = "Agentry-Signature";
    public const string TaskIdHeader = "Agentry-Task-Id";

    /// <summary>
    /// The largest response body kept as a task's result. A larger one fails the task for good rather than
    /// being cut: a truncated document is not the answer, and asking again would bring the same.
    /// </summary>
    public const int MaxResultBytes = 64 * 1024;

    private const int ErrorExcerptChars = 200;

    /// <summary>Posts <paramref name="body"/>; returns the response body as JSON (a JSON string when it is not JSON; null when empty).</summary>
    public async Task<JsonElement?> PostAsync(AgentWebhook hook, Guid taskId, string idempotencyKey, byte[] body, CancellationToken ct)
    {
        if (hook.Secret is null)
        {
            // Only hooks stored before secrets existed lack one; any update of the agent generates it.
            throw new TaskFailedException("The hook has no signing secret; update the agent to set or generate one.", retryable: false);
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, hook.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.Add(SignatureHeader, Sign(hook.Secret, clock.GetUtcNow().ToUnixTimeSeconds(), body));
        request.Headers.Add(TaskIdHeader, taskId.ToString());
        request.Headers.Add(TaskEndpoints.IdempotencyKeyHeader, idempotencyKey);
        HttpResponseMessage response;
        try
        {
            response = await clients.CreateClient(EgressExtensions.ClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException ex) when (Denied(ex) is { } denied)
        {
            throw new TaskFailedException($"The egress guard refused the call: {denied.Message}", retryable: false, ex);
        }
        catch (HttpRequestException ex)
        {
            throw new TaskFailedException($"Could not reach the webhook: {ex.Message}", retryable: true, ex);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new TaskFailedException("The webhook did not answer within the outbound request timeout.", retryable: true, ex);
        }
        using (response)
        {
            var (bytes, complete) = await ReadAsync(response, ct);
            var status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                return complete
                    ? Result(bytes)
                    : throw new TaskFailedException($"The webhook answered {status} with a body over {MaxResultBytes / 1024} KB, the most a result may hold.", retryable: false);
            }
            var excerpt = Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, ErrorExcerptChars)).Trim();
            var message = $"The webhook answered {status} {response.ReasonPhrase}" + (excerpt.Length > 0 ? $": {excerpt}" : ".");
            throw new TaskFailedException(message, retryable: status is 408 or 429 or >= 500);
        }
    }

    /// <summary><c>t=&lt;unix seconds&gt;,v1=&lt;hex HMAC-SHA256 of "t.body"&gt;</c>.</summary>
    public static string Sign(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var t = timestamp.ToString(CultureInfo.InvariantCulture);
        var signed = new byte[t.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(t, signed);
        signed[t.Length] = (byte)'.';
        body.CopyTo(signed.AsSpan(t.Length + 1));
        return $"t={t},v1={Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed))}";
    }

    /// <summary>Reads at most one byte over the cap, so a huge body is neither buffered nor mistaken for a whole one.</summary>
    private static async Task<(byte[] Bytes, bool Complete)> ReadAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new byte[MaxResultBytes + 1];
            var length = 0;
            int read;
            while (length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), ct)) > 0)
            {
                length += read;
            }
            return (buffer[..Math.Min(length, MaxResultBytes)], length <= MaxResultBytes);
        }
        catch (HttpRequestException ex) when (Denied(ex) is null)
        {
            throw new TaskFailedException($"The webhook's answer broke off: {ex.Message}", retryable: true, ex);
        }
        catch (EgressDeniedException)
        {
            // The guard's own cap (far above ours) cut the body.
            return ([], false);
        }
    }

    private static JsonElement? Result(byte[] body)
    {
        if (body.Length == 0)
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonSerializer.SerializeToElement(Encoding.UTF8.GetString(body));
        }
    }

    /// <summary>The guard's refusal, which the HTTP stack wraps when it comes from the connect step.</summary>
    private static EgressDeniedException? Denied(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is EgressDeniedException denied)
            {
                return denied;
            }
        }
        return null;
    }
}
