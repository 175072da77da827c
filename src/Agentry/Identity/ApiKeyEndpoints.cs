using System.ComponentModel.DataAnnotations;
using Agentry.Data;
using Agentry.Hosting;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Agentry.Identity;

/// <summary>A new key; <c>dailyTokenBudget</c> limits the tokens its model calls use per UTC day (fixed for the key's life).</summary>
public sealed record CreateApiKeyRequest(
    [Required, StringLength(100, MinimumLength = 1)] string Name,
    [Required, MinLength(1)] string[] Scopes,
    DateTime? ExpiresAt,
    [Range(1, Agentry.Workspaces.WorkspaceContracts.MaxDailyTokenBudget)] long? DailyTokenBudget = null);

public record ApiKeyResponse(
    Guid Id, Guid WorkspaceId, string Name, string Prefix, IReadOnlyList<string> Scopes, long? DailyTokenBudget, Guid CreatedBy,
    DateTime CreatedAt, DateTime? ExpiresAt, DateTime? LastUsedAt, DateTime? RevokedAt);

/// <summary>The one response that carries the key itself; it is never shown again.</summary>
public sealed record CreatedApiKeyResponse(
    Guid Id, Guid WorkspaceId, string Name, string Prefix, IReadOnlyList<string> Scopes, long? DailyTokenBudget, Guid CreatedBy,
    DateTime CreatedAt, DateTime? ExpiresAt, DateTime? LastUsedAt, DateTime? RevokedAt, string Key)
    : ApiKeyResponse(Id, WorkspaceId, Name, Prefix, Scopes, DailyTokenBudget, CreatedBy, CreatedAt, ExpiresAt, LastUsedAt, RevokedAt);

/// <summary>A workspace's API keys, managed by its admins (signed in as users: a key cannot mint keys).</summary>
internal static class ApiKeyEndpoints
{
    private const int MaxActiveKeysPerWorkspace = 1000;
    private static readonly string[] Sorts = ["-createdAt", "createdAt"];

    public static void MapApiKeys(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/api/v1/workspaces/{workspaceId:guid}/api-keys").WithTags("API keys")
            .RequireScope(ApiKeyScopes.Admin).RequireWorkspaceRole(Roles.Admin)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status500InternalServerError);
        group.MapPost("/", CreateAsync).WithName("CreateApiKey").WithSummary("Create an API key; the response is the only time the key is shown")
            .ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/", ListAsync).WithName("ListApiKeys").WithSummary("List a workspace's API keys (never their secrets), a page at a time")
            .ProducesValidationProblem();
        group.MapGet("/{keyId:guid}", GetAsync).WithName("GetApiKey").WithSummary("Get an API key");
        group.MapDelete("/{keyId:guid}", RevokeAsync).WithName("RevokeApiKey").WithSummary("Revoke an API key: refused on every node within a second");
    }

    internal static async Task<Results<Created<CreatedApiKeyResponse>, ProblemHttpResult>> CreateAsync(
        Guid workspaceId, CreateApiKeyRequest request, Caller caller, AppDbContext db, AuditTrail audit, TimeProvider clock, CancellationToken ct)
    {
        if (caller.IsWorkspaceBound)
        {
            return Problem.Forbidden("API keys and service accounts cannot create API keys; sign in as a workspace admin.");
        }
        var now = clock.UtcNow();
        var scopes = request.Scopes.Distinct(StringComparer.Ordinal).ToArray();
        if (scopes.FirstOrDefault(s => !ApiKeyScopes.All.Contains(s)) is { } unknown)
        {
            return Problem.Validation("scopes", $"Unknown scope '{unknown}'. Allowed: {string.Join(", ", ApiKeyScopes.All)}.");
        }
        if (request.ExpiresAt is { } expires && expires.ToUniversalTime() <= now)
        {
            return Problem.Validation("expiresAt", "The expiry must be in the future.");
        }
        if (await db.ApiKeys.CountAsync(k => k.WorkspaceId == workspaceId && k.RevokedAt == null, ct) >= MaxActiveKeysPerWorkspace)
        {
            return Problem.Conflict("too_many_keys", $"A workspace has at most {MaxActiveKeysPerWorkspace} active keys; revoke some first.");
        }
        var secret = ApiKeySecret.Create();
        var key = new ApiKey
        {
            Id = Ids.New(),
            WorkspaceId = workspaceId,
            Name = request.Name.Trim(),
            Prefix = ApiKeySecret.PrefixOf(secret),
            Hash = ApiKeySecret.Hash(secret),
            Scopes = string.Join(' ', scopes),
            CreatedBy = caller.UserId,
            CreatedAt = now,
            ExpiresAt = request.ExpiresAt?.ToUniversalTime(),
            DailyTokenBudget = request.DailyTokenBudget,
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(ct);
        await audit.RecordAsync(AuditActions.ApiKeyCreated, AuditOutcomes.Success, workspaceId, AuditTargets.ApiKey(key.Id),
            new { key.Name, key.Prefix, scopes, key.ExpiresAt, key.DailyTokenBudget });
        var created = new CreatedApiKeyResponse(
            key.Id, key.WorkspaceId, key.Name, key.Prefix, scopes, key.DailyTokenBudget, key.CreatedBy, key.CreatedAt, key.ExpiresAt, null, null, secret);
        return TypedResults.Created($"/api/v1/workspaces/{workspaceId}/api-keys/{key.Id}", created);
    }

    internal static async Task<Results<Ok<Page<ApiKeyResponse>>, ProblemHttpResult>> ListAsync(
        Guid workspaceId, [AsParameters] PageRequest page, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Sorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        var listed = await db.ApiKeys.AsNoTracking().Where(k => k.WorkspaceId == workspaceId)
            .NamedRowPageAsync(sort, after, page.Size, ToResponse, ct);
        return TypedResults.Ok(listed);
    }

    internal static async Task<Results<Ok<ApiKeyResponse>, ProblemHttpResult>> GetAsync(
        Guid workspaceId, Guid keyId, AppDbContext db, CancellationToken ct)
    {
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Id == keyId && k.WorkspaceId == workspaceId, ct);
        return key is null ? KeyNotFound(keyId) : TypedResults.Ok(ToResponse(key));
    }

    /// <summary>Idempotent: revoking a revoked key succeeds again.</summary>
    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        Guid workspaceId, Guid keyId, AppDbContext db, ApiKeyGrants grants, AuditTrail audit, TimeProvider clock, CancellationToken ct)
    {
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == keyId && k.WorkspaceId == workspaceId, ct);
        if (key is null)
        {
            return KeyNotFound(keyId);
        }
        if (key.RevokedAt is null)
        {
            key.RevokedAt = clock.UtcNow();
            await db.SaveChangesAsync(ct);
            await audit.RecordAsync(AuditActions.ApiKeyRevoked, AuditOutcomes.Success, workspaceId, AuditTargets.ApiKey(key.Id), new { key.Name, key.Prefix });
        }
        await grants.ForgetAsync(key.Hash, ct);
        return TypedResults.NoContent();
    }

    private static ApiKeyResponse ToResponse(ApiKey k) =>
        new(k.Id, k.WorkspaceId, k.Name, k.Prefix, k.Scopes.Split(' '), k.DailyTokenBudget, k.CreatedBy, k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt);

    private static ProblemHttpResult KeyNotFound(Guid id) => Problem.NotFound($"API key {id} was not found.");
}
