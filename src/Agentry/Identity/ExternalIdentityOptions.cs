using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Agentry.Identity;

/// <summary>
/// Access tokens from one external OpenID Connect issuer (Keycloak, Entra ID, …), accepted besides
/// Agentry's own. Section <c>Agentry:ExternalIdentity</c>; off while <see cref="Authority"/> is unset.
/// </summary>
public sealed class ExternalIdentityOptions
{
    public const string SectionName = "Agentry:ExternalIdentity";

    /// <summary>Map a token to the user linked to its issuer and subject (<c>external_logins</c>).</summary>
    public const string BySubject = "subject";

    /// <summary>Map a token to the user with its (verified) email address.</summary>
    public const string ByEmail = "email";

    /// <summary>Asymmetric algorithms only: an HMAC key would have to be shared with the provider.</summary>
    internal static readonly string[] SupportedAlgorithms =
    [
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
    ];

    private static readonly string[] DefaultAlgorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.EcdsaSha256];

    /// <summary>The issuer URL; its discovery document (<c>.well-known/openid-configuration</c>) gives the keys.</summary>
    public Uri? Authority { get; set; }

    /// <summary>The <c>aud</c> the provider puts in access tokens meant for Agentry.</summary>
    public string? Audience { get; set; }

    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary><see cref="ByEmail"/> (default) or <see cref="BySubject"/>.</summary>
    public string MapBy { get; set; } = ByEmail;

    /// <summary>The claim holding the email address (Entra ID access tokens may carry <c>upn</c> or <c>preferred_username</c> instead).</summary>
    public string EmailClaim { get; set; } = "email";

    /// <summary>Empty means RS256 and ES256. (An array default would be appended to by the binder, not replaced.)</summary>
    public string[] AllowedAlgorithms { get; set; } = [];

    /// <summary>Create an unknown user on first sight (no password, no memberships) instead of refusing the token.</summary>
    public bool CreateUsers { get; set; }

    public bool Enabled => Authority is not null;

    public bool MapsBySubject => string.Equals(MapBy, BySubject, StringComparison.OrdinalIgnoreCase);

    public IReadOnlyList<string> Algorithms => AllowedAlgorithms.Length == 0 ? DefaultAlgorithms : AllowedAlgorithms;
}

internal sealed class ExternalIdentityOptionsValidator : IValidateOptions<ExternalIdentityOptions>
{
    private const string Key = ExternalIdentityOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, ExternalIdentityOptions options)
    {
        if (options.Authority is not { } authority)
        {
            return ValidateOptionsResult.Success;
        }
        var errors = new List<string>();
        if (!authority.IsAbsoluteUri || authority.Scheme is not ("https" or "http"))
        {
            errors.Add($"{Key}:Authority must be an absolute http(s) URL (the issuer), not '{authority.OriginalString}'.");
        }
        else if (authority.Scheme == "http" && options.RequireHttpsMetadata)
        {
            errors.Add($"{Key}:Authority must be an https URL unless {Key}:RequireHttpsMetadata is false.");
        }
        if (string.IsNullOrWhiteSpace(options.Audience))
        {
            errors.Add($"{Key}:Audience is required when {Key}:Authority is set (the 'aud' the provider issues for Agentry).");
        }
        if (options.MapBy is not { } mapBy
            || !(mapBy.Equals(ExternalIdentityOptions.ByEmail, StringComparison.OrdinalIgnoreCase) || mapBy.Equals(ExternalIdentityOptions.BySubject, StringComparison.OrdinalIgnoreCase)))
        {
            errors.Add($"{Key}:MapBy must be '{ExternalIdentityOptions.ByEmail}' or '{ExternalIdentityOptions.BySubject}', not '{options.MapBy}'.");
        }
        if (string.IsNullOrWhiteSpace(options.EmailClaim))
        {
            errors.Add($"{Key}:EmailClaim must name a claim.");
        }
        var unsupported = options.AllowedAlgorithms.Where(a => !ExternalIdentityOptions.SupportedAlgorithms.Contains(a, StringComparer.Ordinal)).ToList();
        if (unsupported.Count > 0)
        {
            errors.Add($"{Key}:AllowedAlgorithms has unsupported entries ({string.Join(", ", unsupported)}); allowed: {string.Join(", ", ExternalIdentityOptions.SupportedAlgorithms)}.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
