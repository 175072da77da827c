using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

public sealed record CreateServiceAccountRequest(
    [Required, StringLength(100, MinimumLength = 1)] string Name,
    [Required, MinLength(1)] string[] Scopes);

public record ServiceAccountResponse(
    Guid Id, Guid WorkspaceId, string Name, string ClientId, IReadOnlyList<string> Scopes, Guid CreatedBy, DateTime CreatedAt, DateTime? DisabledAt);

/// <summary>The one response that carries the client secret; it is never shown again.</summary>
public sealed record CreatedServiceAccountResponse(
    Guid Id, Guid WorkspaceId, string Name, string ClientId, IReadOnlyList<string> Scopes, Guid CreatedBy, DateTime CreatedAt, DateTime? DisabledAt,
    string ClientSecret)
    : ServiceAccountResponse(Id, WorkspaceId, Name, ClientId, Scopes, CreatedBy, CreatedAt, DisabledAt);

/// <summary>A workspace's service accounts (OAuth client-credentials clients), managed by its admins.</summary>
internal static class ServiceAccountEndpoints
{
    private const int MaxActivePerWorkspace = 100;
    private static readonly string[] Sorts = ["-createdAt", "createdAt"];

    public static void MapServiceAccounts(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/workspaces/{workspaceId:guid}/service-accounts").WithTags("Service accounts")
            .RequireScope(ApiKeyScopes.Admin).RequireWorkspaceRole(Roles.Admin)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status500InternalServerError);
        group.MapPost("/", CreateAsync).WithName("CreateServiceAccount")
            .WithSummary("Create a service account; the response is the only time its client secret is shown")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/", ListAsync).WithName("ListServiceAccounts").WithSummary("List a workspace's service accounts, a page at a time")
            .ProducesValidationProblem();
        group.MapGet("/{accountId:guid}", GetAsync).WithName("GetServiceAccount").WithSummary("Get a service account");
        group.MapDelete("/{accountId:guid}", DeleteAsync).WithName("DeleteServiceAccount")
            .WithSummary("Delete a service account: its client is removed and its tokens are refused on every node within a second");
    }

    internal static async Task<Results<Created<CreatedServiceAccountResponse>, ProblemHttpResult>> CreateAsync(
        Guid workspaceId, CreateServiceAccountRequest request, Caller caller, AppDbContext db, IOpenIddictApplicationManager applications,
        AuditTrail audit, TimeProvider clock, CancellationToken ct)
    {
        if (caller.IsWorkspaceBound)
        {
            return Problem.Forbidden("API keys and service accounts cannot create service accounts; sign in as a workspace admin.");
        }
        var scopes = request.Scopes.Distinct(StringComparer.Ordinal).ToArray();
        if (scopes.FirstOrDefault(s => !ApiKeyScopes.All.Contains(s)) is { } unknown)
        {
            return Problem.Validation("scopes", $"Unknown scope '{unknown}'. Allowed: {string.Join(", ", ApiKeyScopes.All)}.");
        }
        if (await db.ServiceAccounts.CountAsync(a => a.WorkspaceId == workspaceId && a.DisabledAt == null, ct) >= MaxActivePerWorkspace)
        {
            return Problem.Conflict("too_many_service_accounts", $"A workspace has at most {MaxActivePerWorkspace} service accounts; delete some first.");
        }
        var account = new ServiceAccount
        {
            Id = Ids.New(),
            WorkspaceId = workspaceId,
            Name = request.Name.Trim(),
            ClientId = "sa_" + Ids.New().ToString("N"),
            Scopes = string.Join(' ', scopes),
            CreatedBy = caller.UserId,
            CreatedAt = clock.UtcNow(),
        };
        var secret = RandomNumberGenerator.GetString(ApiKeySecret.Base62, 40);
        var client = new OpenIddictApplicationDescriptor
        {
            ClientId = account.ClientId,
            ClientSecret = secret,
            ClientType = ClientTypes.Confidential,
            DisplayName = account.Name,
            Permissions =
            {
                Permissions.Endpoints.Token,
                Permissions.Endpoints.Revocation,
                Permissions.Endpoints.Introspection,
                Permissions.GrantTypes.ClientCredentials,
            },
        };
        foreach (var scope in scopes)
        {
            client.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }
        // The row first: a client without its row could sign in to nothing (the token endpoint needs the row).
        db.ServiceAccounts.Add(account);
        await db.SaveChangesAsync(ct);
        await applications.CreateAsync(client, ct);
        await audit.RecordAsync(AuditActions.ServiceAccountCreated, AuditOutcomes.Success, workspaceId, AuditTargets.ServiceAccount(account.Id),
            new { account.Name, account.ClientId, scopes });
        var created = new CreatedServiceAccountResponse(
            account.Id, workspaceId, account.Name, account.ClientId, scopes, account.CreatedBy, account.CreatedAt, null, secret);
        return TypedResults.Created($"/api/v1/workspaces/{workspaceId}/service-accounts/{account.Id}", created);
    }

    internal static async Task<Results<Ok<Page<ServiceAccountResponse>>, ProblemHttpResult>> ListAsync(
        Guid workspaceId, [AsParameters] PageRequest page, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Sorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var listed = await db.ServiceAccounts.AsNoTracking().Where(a => a.WorkspaceId == workspaceId)
            .NamedRowPageAsync(sort, after, page.Size, ToResponse, ct);
        return TypedResults.Ok(listed);
    }

    internal static async Task<Results<Ok<ServiceAccountResponse>, ProblemHttpResult>> GetAsync(
        Guid workspaceId, Guid accountId, AppDbContext db, CancellationToken ct)
    {
        var account = await db.ServiceAccounts.AsNoTracking().FirstOrDefaultAsync(a => a.Id == accountId && a.WorkspaceId == workspaceId, ct);
        return account is null ? NotFound(accountId) : TypedResults.Ok(ToResponse(account));
    }

    /// <summary>Idempotent. The client goes first, so no new token is issued; then every issued token is revoked.</summary>
    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid workspaceId, Guid accountId, AppDbContext db, IOpenIddictApplicationManager applications, TokenStatuses statuses, AuditTrail audit, TimeProvider clock, CancellationToken ct)
    {
        var account = await db.ServiceAccounts.FirstOrDefaultAsync(a => a.Id == accountId && a.WorkspaceId == workspaceId, ct);
        if (account is null)
        {
            return NotFound(accountId);
        }
        if (account.DisabledAt is null)
        {
            account.DisabledAt = clock.UtcNow();
            await db.SaveChangesAsync(ct);
            await audit.RecordAsync(AuditActions.ServiceAccountDeleted, AuditOutcomes.Success, workspaceId, AuditTargets.ServiceAccount(account.Id),
                new { account.Name, account.ClientId });
        }
        if (await applications.FindByClientIdAsync(account.ClientId, ct) is { } client)
        {
            var clientId = await applications.GetIdAsync(client, ct);
            // Untracked: the store deletes the client's tokens itself, and tracked copies would conflict.
            var issued = await db.Set<OpenIddictEntityFrameworkCoreToken>().AsNoTracking()
                .Where(t => t.Application!.Id == clientId).Select(t => t.Id!).ToListAsync(ct);
            foreach (var tokenId in issued)
            {
                await statuses.MarkRevokedAsync(tokenId, ct);
            }
            await applications.DeleteAsync(client, ct);
        }
        return TypedResults.NoContent();
    }

    private static ServiceAccountResponse ToResponse(ServiceAccount a) =>
        new(a.Id, a.WorkspaceId, a.Name, a.ClientId, a.Scopes.Split(' '), a.CreatedBy, a.CreatedAt, a.DisabledAt);

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Service account {id} was not found.");
}
