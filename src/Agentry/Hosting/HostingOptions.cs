using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.Options;

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

    /// <summary>Browser origins (<c>https://console.example.com</c>) allowed to call the API; none by default.</summary>
    public string[] CorsOrigins { get; set; } = [];

    /// <summary>
    /// Proxies (Kong) whose X-Forwarded-For/-Proto/-Host headers are believed: addresses or CIDR networks.
    /// None by default, so a client cannot claim another address or scheme.
    /// </summary>
    public string[] TrustedProxies { get; set; } = [];
}

internal sealed class HostingOptionsValidator : IValidateOptions<HostingOptions>
{
    public ValidateOptionsResult Validate(string? name, HostingOptions options)
    {
        var errors = new List<string>();
        foreach (var origin in options.CorsOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
                || uri.PathAndQuery != "/" || origin.EndsWith('/'))
            {
                errors.Add($"Agentry:Hosting:CorsOrigins has '{origin}'; each entry must be an origin like https://console.example.com (no wildcard, path or trailing slash).");
            }
        }
        foreach (var proxy in options.TrustedProxies)
        {
            if (!IPAddress.TryParse(proxy, out _) && !IPNetwork.TryParse(proxy, out _))
            {
                errors.Add($"Agentry:Hosting:TrustedProxies has '{proxy}'; each entry must be an IP address or a CIDR network.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
