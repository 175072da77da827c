using System.Security.Cryptography;
using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>
/// On first start: the administrator, a <c>default</c> workspace they own, and the first-party public
/// clients (<c>agentry-cli</c>, <c>agentry-console</c>). Runs after the migrations; safe when several
/// nodes start together (unique indexes decide, the losers carry on). It runs in the background, so
/// start-up does not wait for it; sign-in does. With the database unreachable it retries.
/// </summary>
internal sealed class IdentityBootstrap(
    IServiceScopeFactory scopes,
    IOptions<BootstrapOptions> options,
    IPasswordHasher<User> hasher,
    IHostApplicationLifetime lifetime,
    TimeProvider clock,
    ILogger<IdentityBootstrap> logger) : BackgroundService
{
    public static readonly string[] FirstPartyClients = ["agentry-cli", "agentry-console"];

    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(5);

    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How long a sign-in waits for the bootstrap; longer is an outage (503).</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(10);

    /// <summary>Completes once the administrator (on a first start) and the clients exist.</summary>
    public Task Completed => _completed.Task;

    /// <summary>Middleware: holds a request until the administrator and the clients exist.</summary>
    public async Task WaitAsync(HttpContext context, RequestDelegate next)
    {
        if (!_completed.Task.IsCompleted)
        {
            await _completed.Task.WaitAsync(MaxWait, clock, context.RequestAborted);
        }
        await next(context);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the start-up path: once the server listens, so probes are answered first.
        await WhenStartedAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            if (await TryBootstrapAsync(stoppingToken))
            {
                _completed.TrySetResult();
                return;
            }
            await Task.Delay(RetryDelay, clock, stoppingToken);
        }
    }

    private Task WhenStartedAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        return started.Task.WaitAsync(stoppingToken);
    }

    private async Task<bool> TryBootstrapAsync(CancellationToken cancellationToken)
    {
        try
        {
            await BootstrapAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex.IsDatabaseOutage())
        {
            IdentityLog.BootstrapDeferred(logger, ex.Message);
            return false;
        }
    }

    private async Task BootstrapAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await EnsureClientsAsync(scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>(), cancellationToken);
        if (!await db.Users.AnyAsync(cancellationToken))
        {
            await CreateAdministratorAsync(db, cancellationToken);
        }
    }

    private async Task CreateAdministratorAsync(AppDbContext db, CancellationToken cancellationToken)
    {
        var email = options.Value.AdminEmail;
        var password = options.Value.AdminPassword ?? RandomNumberGenerator.GetString("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", 24);
        var now = clock.UtcNow();
        var admin = new User
        {
            Id = Ids.New(),
            Email = email,
            NormalizedEmail = User.Normalize(email),
            DisplayName = "Administrator",
            IsPlatformAdmin = true,
            CreatedAt = now,
        };
        admin.PasswordHash = hasher.HashPassword(admin, password);
        var workspace = await db.Workspaces.FirstOrDefaultAsync(w => w.Slug == "default", cancellationToken)
            ?? db.Workspaces.Add(new Workspace { Id = Ids.New(), Name = "Default", Slug = "default", CreatedAt = now, UpdatedAt = now }).Entity;
        db.Users.Add(admin);
        db.Memberships.Add(new Membership { WorkspaceId = workspace.Id, UserId = admin.Id, Role = Roles.Owner, CreatedAt = now });
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return; // another node bootstrapped first
        }
        if (options.Value.AdminPassword is null)
        {
            IdentityLog.GeneratedAdminPassword(logger, email, password);
        }
        else
        {
            IdentityLog.CreatedAdmin(logger, email);
        }
    }

    private static async Task EnsureClientsAsync(IOpenIddictApplicationManager applications, CancellationToken cancellationToken)
    {
        foreach (var clientId in FirstPartyClients)
        {
            var client = new OpenIddictApplicationDescriptor
            {
                ClientId = clientId,
                ClientType = ClientTypes.Public,
                DisplayName = clientId,
                Permissions =
                {
                    Permissions.Endpoints.Token,
                    Permissions.Endpoints.Revocation,
                    Permissions.GrantTypes.Password,
                    Permissions.GrantTypes.RefreshToken,
                    Permissions.Scopes.Email,
                    Permissions.Scopes.Profile,
                },
            };
            if (await applications.FindByClientIdAsync(clientId, cancellationToken) is { } existing)
            {
                // A node of a newer version grants what the clients of an older one lacked.
                var granted = await applications.GetPermissionsAsync(existing, cancellationToken);
                if (!client.Permissions.SetEquals(granted))
                {
                    try
                    {
                        await applications.UpdateAsync(existing, client, cancellationToken);
                    }
                    catch (OpenIddictExceptions.ConcurrencyException)
                    {
                        // updated by another node meanwhile
                    }
                }
                continue;
            }
            try
            {
                await applications.CreateAsync(client, cancellationToken);
            }
            catch (DbUpdateException ex) when (ex.IsUniqueViolation())
            {
                // created by another node meanwhile
            }
        }
    }
}

internal static partial class IdentityLog
{
    [LoggerMessage(1, LogLevel.Warning, "Created the administrator {Email} with the one-time password {Password}. Sign in and change it; it is not shown again.")]
    public static partial void GeneratedAdminPassword(ILogger logger, string email, string password);

    [LoggerMessage(2, LogLevel.Information, "Created the administrator {Email} with the configured password")]
    public static partial void CreatedAdmin(ILogger logger, string email);

    [LoggerMessage(4, LogLevel.Warning, "Identity bootstrap deferred, the database is not reachable: {Reason}")]
    public static partial void BootstrapDeferred(ILogger logger, string reason);

    [LoggerMessage(5, LogLevel.Warning, "A used refresh token of user {Subject} was presented again: every token of authorization {AuthorizationId} is revoked")]
    public static partial void RefreshTokenReused(ILogger logger, string subject, string authorizationId);

    [LoggerMessage(6, LogLevel.Warning, "Token keys not reloaded, the database is not reachable: {Reason}")]
    public static partial void KeyReloadDeferred(ILogger logger, string reason);

    [LoggerMessage(3, LogLevel.Information, "Sign-in refused for {Email}: {Reason}")]
    public static partial void SignInRefused(ILogger logger, string email, string reason);

    [LoggerMessage(20, LogLevel.Error, "Audit event not written: {Action} {Outcome} by user {ActorUserId} key {ActorKeyId} ({ActorName}) in workspace {WorkspaceId} on {Target} from {Ip}: {Detail}")]
    public static partial void AuditWriteFailed(ILogger logger, Exception exception, string action, string outcome, Guid? actorUserId, Guid? actorKeyId,
        string? actorName, Guid? workspaceId, string? target, string? ip, string? detail);
}
