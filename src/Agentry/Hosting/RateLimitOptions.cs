using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

/// <summary>The rate limit policies a route group can choose with <c>RequireRateLimiting(name)</c>.</summary>
public static class RateLimitPolicies
{
    /// <summary>Per principal (API key, else user, else client address); every /api/v1 route has it unless it chooses another.</summary>
    public const string Api = "api";

    /// <summary>Per workspace, on top of the principal's bucket, wherever a request names a workspace.</summary>
    public const string Workspace = "workspace";

    /// <summary>Per client address, for the token endpoint.</summary>
    public const string SignIn = "signin";
}

/// <summary>Token buckets per principal, per workspace and for sign-in. Section <c>Agentry:RateLimits</c>.</summary>
public sealed class RateLimitOptions
{
    public const string SectionName = "Agentry:RateLimits";

    public bool Enabled { get; set; } = true;

    public TokenBucketSettings Api { get; set; } = new() { PermitsPerPeriod = 50, Period = TimeSpan.FromSeconds(1), Burst = 100 };

    public TokenBucketSettings Workspace { get; set; } = new() { PermitsPerPeriod = 200, Period = TimeSpan.FromSeconds(1), Burst = 400 };

    /// <summary>Strict: guessing passwords is slow even before the per-account lockout starts.</summary>
    public TokenBucketSettings SignIn { get; set; } = new() { PermitsPerPeriod = 10, Period = TimeSpan.FromMinutes(1), Burst = 10 };

    internal TokenBucketSettings For(string policy) => policy switch
    {
        RateLimitPolicies.Api => Api,
        RateLimitPolicies.Workspace => Workspace,
        RateLimitPolicies.SignIn => SignIn,
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "No such rate limit policy."),
    };

    internal IEnumerable<(string Key, TokenBucketSettings Bucket)> Buckets =>
    [
        ($"{SectionName}:{nameof(Api)}", Api),
        ($"{SectionName}:{nameof(Workspace)}", Workspace),
        ($"{SectionName}:{nameof(SignIn)}", SignIn),
    ];
}

/// <summary>A bucket of <see cref="Burst"/> tokens, refilled by <see cref="PermitsPerPeriod"/> every <see cref="Period"/>; a request takes one.</summary>
public sealed class TokenBucketSettings
{
    [Range(1, 1_000_000, ErrorMessage = "{0} must be between {1} and {2}.")]
    public int PermitsPerPeriod { get; set; }

    [Range(typeof(TimeSpan), "00:00:00.1", "1.00:00:00", ErrorMessage = "{0} must be between {1} and {2}.")]
    public TimeSpan Period { get; set; }

    /// <summary>The most requests allowed at once after a quiet spell.</summary>
    [Range(1, 1_000_000, ErrorMessage = "{0} must be between {1} and {2}.")]
    public int Burst { get; set; }
}

/// <summary>
/// Validates every bucket (data annotations do not reach nested objects) and names the full key in each message.
/// </summary>
internal sealed class RateLimitOptionsValidator : IValidateOptions<RateLimitOptions>
{
    public ValidateOptionsResult Validate(string? name, RateLimitOptions options)
    {
        var errors = new List<string>();
        foreach (var (key, bucket) in options.Buckets)
        {
            var results = new List<ValidationResult>();
            Validator.TryValidateObject(bucket, new ValidationContext(bucket), results, validateAllProperties: true);
            errors.AddRange(results.Select(result => $"{key}:{result.ErrorMessage}"));
            if (results.Count == 0 && bucket.Burst < bucket.PermitsPerPeriod)
            {
                errors.Add($"{key}:Burst ({bucket.Burst}) must be at least {key}:PermitsPerPeriod ({bucket.PermitsPerPeriod}); a smaller bucket cannot hold one period's permits.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
