using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Agentry.Mesh;

/// <summary>
/// Registration with a Consul agent. Section <c>Agentry:Consul</c>; off unless <see cref="Address"/> is set (the agent on
/// the same host, usually <c>http://127.0.0.1:8500</c>).
/// </summary>
public sealed class ConsulOptions
{
    public const string SectionName = "Agentry:Consul";

    /// <summary>The Consul agent's HTTP API; null (the default) registers nothing.</summary>
    public Uri? Address { get; set; }

    /// <summary>An ACL token sent as <c>X-Consul-Token</c>; a secret (a file-backed setting), never logged.</summary>
    public string? Token { get; set; }

    /// <summary>The service name every node registers under; nodes tell their role by tag and meta.</summary>
    [Required, RegularExpression("^[a-z0-9][a-z0-9-]{0,62}$", ErrorMessage = "Agentry:Consul:ServiceName must be lowercase letters, digits and dashes (at most 63).")]
    public string ServiceName { get; set; } = "agentry";

    /// <summary>This node's id in Consul; by default <c>{ServiceName}-{role}-{host}-{port}</c>, the same after a restart.</summary>
    public string? ServiceId { get; set; }

    /// <summary>
    /// The address other hosts reach this node at. By default the host Kestrel listens on, or this machine's name when it
    /// listens on every interface.
    /// </summary>
    public string? AdvertiseAddress { get; set; }

    /// <summary>The port other hosts reach this node at; by default the port Kestrel listens on.</summary>
    [Range(1, 65_535, ErrorMessage = "Agentry:Consul:AdvertisePort must be between 1 and 65535.")]
    public int? AdvertisePort { get; set; }

    /// <summary>Extra tags, besides the role and <c>v{version}</c>.</summary>
    public string[] Tags { get; set; } = [];

    /// <summary>How often Consul calls <c>/health/ready</c>, and how long it waits.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan CheckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a node's check may stay critical before Consul removes it (a node that crashed never deregisters).</summary>
    public TimeSpan DeregisterCriticalAfter { get; set; } = TimeSpan.FromMinutes(1);
}

internal sealed class ConsulOptionsValidator : IValidateOptions<ConsulOptions>
{
    public ValidateOptionsResult Validate(string? name, ConsulOptions o)
    {
        var errors = new List<string>();
        if (o.Address is { } address && (!address.IsAbsoluteUri || address.Scheme is not ("http" or "https")))
        {
            errors.Add("Agentry:Consul:Address must be an absolute http or https URL, like http://127.0.0.1:8500.");
        }
        if (o.CheckInterval < TimeSpan.FromSeconds(1) || o.CheckTimeout < TimeSpan.FromSeconds(1) || o.CheckTimeout > o.CheckInterval)
        {
            errors.Add("Agentry:Consul:CheckInterval and CheckTimeout must be at least 1 s, and the timeout no longer than the interval.");
        }
        if (o.DeregisterCriticalAfter < TimeSpan.FromMinutes(1))
        {
            errors.Add("Agentry:Consul:DeregisterCriticalAfter must be at least 1 minute (Consul's own minimum).");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
