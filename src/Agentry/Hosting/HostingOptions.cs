using System.ComponentModel.DataAnnotations;

namespace Agentry.Hosting;

/// <summary>Limits and behaviour of the HTTP host. Section <c>Agentry:Hosting</c>.</summary>
public sealed class HostingOptions
{
    public const string SectionName = "Agentry:Hosting";

    /// <summary>Largest request body accepted, in bytes; larger bodies get 413.</summary>
    [Range(1_024, 1_073_741_824, ErrorMessage = "Agentry:Hosting:MaxRequestBodyBytes must be between 1024 and 1073741824.")]
    public long MaxRequestBodyBytes { get; set; } = 1_048_576;

    /// <summary>Largest total size of the request headers, in bytes.</summary>
    [Range(4_096, 1_048_576, ErrorMessage = "Agentry:Hosting:MaxRequestHeadersTotalBytes must be between 4096 and 1048576.")]
    public int MaxRequestHeadersTotalBytes { get; set; } = 32_768;

    [Range(10, 1_000, ErrorMessage = "Agentry:Hosting:MaxRequestHeaderCount must be between 10 and 1000.")]
    public int MaxRequestHeaderCount { get; set; } = 100;

    /// <summary>How long a stopping node waits for in-flight requests before it drops them.</summary>
    [Range(1, 600, ErrorMessage = "Agentry:Hosting:ShutdownTimeoutSeconds must be between 1 and 600.")]
    public int ShutdownTimeoutSeconds { get; set; } = 30;
}
