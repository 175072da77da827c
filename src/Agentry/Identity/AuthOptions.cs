using System.ComponentModel.DataAnnotations;

namespace Agentry.Identity;

/// <summary>Tokens issued at /connect/token. Section <c>Agentry:Tokens</c>.</summary>
public sealed class TokenOptions : IValidatableObject
{
    public const string SectionName = "Agentry:Tokens";

    /// <summary>The audience every access token carries and every API request must present.</summary>
    public const string Audience = "agentry-api";

    /// <summary>Issuer URL (e.g. https://agentry.example.com/). Set it when several nodes or a gateway serve the API; unset: the request's own base URL.</summary>
    public Uri? Issuer { get; set; }

    [Range(typeof(TimeSpan), "00:01:00", "1.00:00:00", ErrorMessage = "Agentry:Tokens:AccessTokenLifetime must be between 00:01:00 and 1.00:00:00.")]
    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    [Range(typeof(TimeSpan), "00:05:00", "365.00:00:00", ErrorMessage = "Agentry:Tokens:RefreshTokenLifetime must be between 00:05:00 and 365.00:00:00.")]
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>How long a signing key signs before the next generation takes over.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00", ErrorMessage = "Agentry:Tokens:SigningKeyRotation must be between 00:00:01 and 365.00:00:00.")]
    public TimeSpan SigningKeyRotation { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often every node reads the keys again (and rotates when due). A new key signs after two intervals.</summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "01:00:00", ErrorMessage = "Agentry:Tokens:KeyRefreshInterval must be between 00:00:00.1 and 01:00:00.")]
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Base64 of 32 random bytes (e.g. <c>openssl rand -base64 32</c>), best as a secret file: token keys are
    /// then stored encrypted (AES-256-GCM) in the database. Unset: stored as they are, protected only by the
    /// database's own access control.
    /// </summary>
    public string? KeyEncryptionKey { get; set; }

    /// <summary>Refuse token requests over plain http. Off by default so the embedded quick start works; turn on behind TLS (and set Agentry:Hosting:TrustedProxies when a gateway terminates it).</summary>
    public bool RequireHttps { get; set; }

    /// <summary>Wrong passwords in a row before an account is locked.</summary>
    [Range(1, 100, ErrorMessage = "Agentry:Tokens:MaxFailedSignIns must be between 1 and 100.")]
    public int MaxFailedSignIns { get; set; } = 5;

    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "Agentry:Tokens:LockoutDuration must be between 00:00:01 and 1.00:00:00.")]
    public TimeSpan LockoutDuration { get; set; } = TimeSpan.FromMinutes(5);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (KeyEncryptionKey is not null && SigningKeyProtection.ParseKey(KeyEncryptionKey) is null)
        {
            yield return new ValidationResult(
                "Agentry:Tokens:KeyEncryptionKey must be the base64 of exactly 32 bytes (openssl rand -base64 32).", [nameof(KeyEncryptionKey)]);
        }
    }
}

/// <summary>The first administrator, created on first start. Section <c>Agentry:Bootstrap</c>.</summary>
public sealed class BootstrapOptions
{
    public const string SectionName = "Agentry:Bootstrap";

    [EmailAddress(ErrorMessage = "Agentry:Bootstrap:AdminEmail must be an email address.")]
    public string AdminEmail { get; set; } = "admin@agentry.local";

    /// <summary>Unset: a one-time password is generated and written once to the log.</summary>
    [MinLength(12, ErrorMessage = "Agentry:Bootstrap:AdminPassword must have at least 12 characters.")]
    public string? AdminPassword { get; set; }
}
