using System.Security.Claims;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>The Agentry user an external identity signs in as, or why there is none.</summary>
internal sealed record ExternalUserMatch(Guid? UserId, string? Refusal)
{
    public static ExternalUserMatch Refused(string reason) => new(null, reason);
}

/// <summary>
/// Maps a verified external token to an Agentry user: by the stored link of its issuer and subject, or
/// by its verified email address; optionally creates the user on first sight. Matches are cached
/// (refusals briefly), so a request costs no database query after the first. Whether the user is
/// disabled is left to <see cref="Caller"/>, which checks it for every kind of token.
/// </summary>
internal sealed class ExternalUsers(IFusionCache cache, IOptions<ExternalIdentityOptions> options, TimeProvider clock, ILogger<ExternalUsers> logger)
{
    private static readonly TimeSpan MatchDuration = TimeSpan.FromMinutes(10);

    /// <summary>Short, so a user an administrator has just created or linked can sign in at once.</summary>
    private static readonly TimeSpan RefusalDuration = TimeSpan.FromSeconds(5);

    private readonly ExternalIdentityOptions _options = options.Value;

    public async Task<ExternalUserMatch> MapAsync(ClaimsPrincipal principal, IServiceProvider services, CancellationToken ct)
    {
        var issuer = principal.FindFirst(Claims.Issuer)?.Value ?? "";
        var subject = principal.FindFirst(Claims.Subject)?.Value;
        if (string.IsNullOrEmpty(subject))
        {
            return ExternalUserMatch.Refused("The token has no 'sub' claim.");
        }
        var email = principal.FindFirst(_options.EmailClaim)?.Value?.Trim();
        if (!_options.MapsBySubject && VerifiedEmail(principal, email) is { } refusal)
        {
            return refusal;
        }
        var key = _options.MapsBySubject ? $"external:subject:{issuer}\n{subject}" : $"external:email:{User.Normalize(email!)}";
        var match = await cache.GetOrSetAsync<ExternalUserMatch>(
            key,
            async (entry, token) =>
            {
                var db = services.GetRequiredService<AppDbContext>();
                var found = _options.MapsBySubject
                    ? await BySubjectAsync(db, principal, issuer, subject, email, token)
                    : await ByEmailAsync(db, principal, email!, token);
                entry.Options.Duration = found.UserId is null ? RefusalDuration : MatchDuration;
                return found;
            },
            token: ct);
        if (match.Refusal is { } reason)
        {
            IdentityLog.ExternalTokenRefused(logger, issuer, subject, reason);
        }
        return match;
    }

    private async Task<ExternalUserMatch> ByEmailAsync(AppDbContext db, ClaimsPrincipal principal, string email, CancellationToken ct)
    {
        if (await FindByEmailAsync(db, email, ct) is { } id)
        {
            return new(id, null);
        }
        if (!_options.CreateUsers)
        {
            return ExternalUserMatch.Refused($"No Agentry user has the email address {email}; an administrator must create the account first.");
        }
        return new(await CreateAsync(db, principal, email, link: null, ct) ?? await FindByEmailAsync(db, email, ct), null);
    }

    private async Task<ExternalUserMatch> BySubjectAsync(AppDbContext db, ClaimsPrincipal principal, string issuer, string subject, string? email, CancellationToken ct)
    {
        if (await FindLinkAsync(db, issuer, subject, ct) is { } id)
        {
            return new(id, null);
        }
        if (!_options.CreateUsers)
        {
            return ExternalUserMatch.Refused($"No Agentry user is linked to subject '{subject}' of {issuer}; an administrator must link the account first.");
        }
        if (VerifiedEmail(principal, email) is { } refusal)
        {
            return refusal;
        }
        if (await FindByEmailAsync(db, email!, ct) is not null)
        {
            // Taking over an existing account by email is exactly what mapping by subject rules out.
            return ExternalUserMatch.Refused($"An Agentry user with the email address {email} exists but is not linked to subject '{subject}' of {issuer}.");
        }
        var created = await CreateAsync(db, principal, email!, (issuer, subject), ct) ?? await FindLinkAsync(db, issuer, subject, ct);
        return created is null ? ExternalUserMatch.Refused($"The user for {email} could not be created; try again.") : new(created, null);
    }

    /// <summary>The email claim, present and not explicitly unverified (<c>email_verified</c> false).</summary>
    private ExternalUserMatch? VerifiedEmail(ClaimsPrincipal principal, string? email)
    {
        if (string.IsNullOrEmpty(email))
        {
            return ExternalUserMatch.Refused($"The token has no '{_options.EmailClaim}' claim to find the Agentry user by.");
        }
        if (string.Equals(principal.FindFirst(Claims.EmailVerified)?.Value, "false", StringComparison.OrdinalIgnoreCase))
        {
            return ExternalUserMatch.Refused($"The identity provider has not verified the email address {email}.");
        }
        return email.Length > User.EmailMaxLength
            ? ExternalUserMatch.Refused($"The email address is longer than {User.EmailMaxLength} characters.")
            : null;
    }

    private static Task<Guid?> FindByEmailAsync(AppDbContext db, string email, CancellationToken ct)
    {
        var normalized = User.Normalize(email);
        return db.Users.AsNoTracking().Where(u => u.NormalizedEmail == normalized).Select(u => (Guid?)u.Id).FirstOrDefaultAsync(ct);
    }

    private static Task<Guid?> FindLinkAsync(AppDbContext db, string issuer, string subject, CancellationToken ct) =>
        db.ExternalLogins.AsNoTracking().Where(l => l.Issuer == issuer && l.Subject == subject).Select(l => (Guid?)l.UserId).FirstOrDefaultAsync(ct);

    /// <summary>A user with no password and no memberships; null when another node created it first.</summary>
    private async Task<Guid?> CreateAsync(
        AppDbContext db, ClaimsPrincipal principal, string email, (string Issuer, string Subject)? link, CancellationToken ct)
    {
        var name = principal.FindFirst(Claims.Name)?.Value ?? principal.FindFirst(Claims.PreferredUsername)?.Value ?? email;
        var user = new User
        {
            Id = Ids.New(),
            Email = email,
            NormalizedEmail = User.Normalize(email),
            DisplayName = name.Length > User.NameMaxLength ? name[..User.NameMaxLength] : name,
            CreatedAt = clock.UtcNow(),
        };
        db.Users.Add(user);
        if (link is { } external)
        {
            db.ExternalLogins.Add(new ExternalLogin { Id = Ids.New(), Issuer = external.Issuer, Subject = external.Subject, UserId = user.Id, CreatedAt = user.CreatedAt });
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // A unique index (email, or issuer and subject) says another request got there first.
            db.ChangeTracker.Clear();
            return null;
        }
        IdentityLog.ExternalUserCreated(logger, email, user.Id);
        return user.Id;
    }
}

internal static partial class IdentityLog
{
    [LoggerMessage(20, LogLevel.Information, "Created user {Email} ({UserId}) on first sign-in with an external identity")]
    public static partial void ExternalUserCreated(ILogger logger, string email, Guid userId);

    [LoggerMessage(21, LogLevel.Information, "External token of {Issuer} subject {Subject} refused: {Reason}")]
    public static partial void ExternalTokenRefused(ILogger logger, string issuer, string subject, string reason);
}
