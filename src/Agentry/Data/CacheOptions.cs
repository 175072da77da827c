using System.ComponentModel.DataAnnotations;

namespace Agentry.Data;

/// <summary>The cache: in-process by default, Redis as second level and backplane when set. Section <c>Agentry:Cache</c>.</summary>
public sealed class CacheOptions
{
    public const string SectionName = "Agentry:Cache";

    /// <summary>StackExchange.Redis configuration string (e.g. <c>redis:6379,password=…</c>). Unset: memory only.</summary>
    public string? Redis { get; set; }

    /// <summary>
    /// Prefix of every Redis key and backplane channel: deployments (or test runs) that share one
    /// Redis but not one database must use different names.
    /// </summary>
    [Required(ErrorMessage = "Agentry:Cache:InstanceName must not be empty.")]
    public string InstanceName { get; set; } = "agentry";

    /// <summary>How long an entry is fresh.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00", ErrorMessage = "Agentry:Cache:Duration must be between 00:00:01 and 7.00:00:00.")]
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a stale entry may still be served when the source of truth fails.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00", ErrorMessage = "Agentry:Cache:FailSafeMaxDuration must be between 00:00:01 and 30.00:00:00.")]
    public TimeSpan FailSafeMaxDuration { get; set; } = TimeSpan.FromHours(2);

    /// <summary>After a Redis failure, how long to use memory alone before trying Redis again.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00", ErrorMessage = "Agentry:Cache:RedisCircuitBreakerDuration must be between 00:00:00 and 00:10:00.")]
    public TimeSpan RedisCircuitBreakerDuration { get; set; } = TimeSpan.FromSeconds(2);
}
