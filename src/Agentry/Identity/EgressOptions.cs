using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.Extensions.Options;

namespace Agentry.Identity;

/// <summary>
/// What the server may fetch when a feature follows a URL a user gave it (webhooks, URL ingestion,
/// HTTP tools). Section <c>Agentry:Egress</c>.
/// </summary>
public sealed class EgressOptions
{
    public const string SectionName = "Agentry:Egress";

    /// <summary>Host names allowed even when they resolve to private or special addresses (e.g. an internal model server).</summary>
    public string[] AllowedHosts { get; set; } = [];

    /// <summary>Networks in CIDR notation (<c>10.1.0.0/16</c>) whose addresses are allowed although private.</summary>
    public string[] AllowedNetworks { get; set; } = [];

    [Range(1_024, 1_073_741_824, ErrorMessage = "Agentry:Egress:MaxResponseBytes must be between 1024 and 1073741824.")]
    public long MaxResponseBytes { get; set; } = 10 * 1024 * 1024;

    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Agentry:Egress:Timeout must be between 00:00:01 and 00:10:00.")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    [Range(0, 20, ErrorMessage = "Agentry:Egress:MaxRedirects must be between 0 and 20.")]
    public int MaxRedirects { get; set; } = 5;
}

internal sealed class EgressOptionsValidator : IValidateOptions<EgressOptions>
{
    public ValidateOptionsResult Validate(string? name, EgressOptions options)
    {
        var bad = options.AllowedNetworks.Where(n => !IPNetwork.TryParse(n, out _)).ToList();
        return bad.Count == 0
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"Agentry:Egress:AllowedNetworks has entries that are not CIDR networks: {string.Join(", ", bad)}.");
    }
}
