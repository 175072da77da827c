using System.ComponentModel.DataAnnotations;

namespace Agentry.Sockets;

/// <summary>The WebSocket API <c>/api/v1/ws</c>. Section <c>Agentry:WebSockets</c>.</summary>
public sealed class SocketOptions
{
    public const string SectionName = "Agentry:WebSockets";

    /// <summary>The largest message a client may send, in bytes; a larger one closes the connection with 1009.</summary>
    [Range(1_024, 16_777_216, ErrorMessage = "Agentry:WebSockets:MaxMessageBytes must be between 1024 and 16777216.")]
    public int MaxMessageBytes { get; set; } = 65_536;

    /// <summary>Messages waiting to be sent to one client; a client that lets it stay full for <see cref="SlowClientTimeout"/> is closed (1013).</summary>
    [Range(1, 100_000, ErrorMessage = "Agentry:WebSockets:SendQueueSize must be between 1 and 100000.")]
    public int SendQueueSize { get; set; } = 256;

    /// <summary>How long a message may wait for room in a full send queue before the client counts as too slow.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00", ErrorMessage = "Agentry:WebSockets:SlowClientTimeout must be between 00:00:00.010 and 00:10:00.")]
    public TimeSpan SlowClientTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Streams one connection may subscribe to at the same time.</summary>
    [Range(1, 1_000, ErrorMessage = "Agentry:WebSockets:MaxSubscriptions must be between 1 and 1000.")]
    public int MaxSubscriptions { get; set; } = 32;

    /// <summary>How often the server pings an idle connection (WebSocket ping frames).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Agentry:WebSockets:KeepAliveInterval must be between 00:00:01 and 01:00:00.")]
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the server waits for the answer to its ping before it drops the connection.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Agentry:WebSockets:KeepAliveTimeout must be between 00:00:01 and 01:00:00.")]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a closing handshake may take (flushing the send in progress, the client's answer) before the connection is dropped.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00", ErrorMessage = "Agentry:WebSockets:CloseTimeout must be between 00:00:00.100 and 00:05:00.")]
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
