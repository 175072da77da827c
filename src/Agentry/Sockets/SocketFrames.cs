using System.Buffers;
using System.Text.Json;

namespace Agentry.Sockets;

/// <summary>The codes of <c>error</c> frames beyond the API's problem codes (<c>not_found</c>, <c>forbidden</c>, <c>validation_failed</c>, …).</summary>
internal static class SocketErrors
{
    public const string MalformedJson = "malformed_json";
    public const string UnknownOp = "unknown_op";
    public const string BinaryNotSupported = "binary_not_supported";
    public const string AlreadySubscribed = "already_subscribed";
    public const string NotSubscribed = "not_subscribed";
    public const string TooManySubscriptions = "too_many_subscriptions";
}

/// <summary>One client message: its <c>op</c>, the <c>requestId</c> to echo (any JSON value, or none) and the whole object.</summary>
internal readonly record struct SocketRequest(string Op, JsonElement? RequestId, JsonElement Body)
{
    /// <summary>The message as a request, or the <c>error</c> frame that answers it (not JSON, not an object, no <c>op</c>).</summary>
    public static (SocketRequest? Request, byte[]? Error) Parse(ReadOnlyMemory<byte> message)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(message);
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            return (null, SocketFrames.Error(null, SocketErrors.MalformedJson, "The message is not valid JSON: " + e.Message));
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, SocketFrames.Error(null, SocketErrors.MalformedJson, "A message must be a JSON object with an \"op\"."));
        }
        JsonElement? requestId = root.TryGetProperty("requestId", out var id) ? id : null;
        return root.TryGetProperty("op", out var op) && op.ValueKind == JsonValueKind.String
            ? (new SocketRequest(op.GetString()!, requestId, root), null)
            : (null, SocketFrames.Error(requestId, SocketErrors.UnknownOp, "A message needs an \"op\": subscribe, unsubscribe, send, cancel or ping."));
    }

    public string? String(string name) =>
        Body.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>The field as an id: null when it is absent, <see cref="Guid.Empty"/> when it is there but no UUID.</summary>
    public Guid? Id(string name) =>
        Body.TryGetProperty(name, out var value) ? value.ValueKind == JsonValueKind.String && Guid.TryParse(value.GetString(), out var id) ? id : Guid.Empty : null;

    /// <summary><c>after</c>: 0 when absent; null when it is not a whole number of 0 or more.</summary>
    public long? After() =>
        !Body.TryGetProperty("after", out var value) || value.ValueKind == JsonValueKind.Null ? 0
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var after) && after >= 0 ? after
        : null;
}

/// <summary>The server's frames, written straight to UTF-8 (camelCase, like the HTTP API).</summary>
internal static class SocketFrames
{
    public static byte[] Event(string stream, Guid id, long seq, string type, DateTime at, JsonElement? data) => Write(w =>
    {
        w.WriteString("op", "event");
        w.WriteString("stream", stream);
        w.WriteString("id", id);
        w.WriteNumber("seq", seq);
        w.WriteString("type", type);
        w.WriteString("at", at);
        if (data is { ValueKind: not JsonValueKind.Undefined } value)
        {
            w.WritePropertyName("data");
            value.WriteTo(w);
        }
    });

    /// <summary>A task's stream ended: the task reached a final state and every event up to <paramref name="seq"/> was sent.</summary>
    public static byte[] End(string stream, Guid id, long seq) => Write(w =>
    {
        w.WriteString("op", "end");
        w.WriteString("stream", stream);
        w.WriteString("id", id);
        w.WriteNumber("seq", seq);
    });

    public static byte[] Ack(JsonElement? requestId, string op, Action<Utf8JsonWriter>? details = null) => Write(w =>
    {
        w.WriteString("op", "ack");
        RequestId(w, requestId);
        w.WriteString("for", op);
        details?.Invoke(w);
    });

    public static byte[] Error(JsonElement? requestId, string code, string message, IDictionary<string, string[]>? errors = null) => Write(w =>
    {
        w.WriteString("op", "error");
        RequestId(w, requestId);
        w.WriteString("code", code);
        w.WriteString("message", message);
        if (errors is not null)
        {
            w.WriteStartObject("errors");
            foreach (var (field, messages) in errors)
            {
                w.WriteStartArray(field);
                foreach (var m in messages)
                {
                    w.WriteStringValue(m);
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
    });

    public static byte[] Pong(JsonElement? requestId) => Write(w =>
    {
        w.WriteString("op", "pong");
        RequestId(w, requestId);
    });

    private static void RequestId(Utf8JsonWriter w, JsonElement? requestId)
    {
        if (requestId is { } id)
        {
            w.WritePropertyName("requestId");
            id.WriteTo(w);
        }
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
