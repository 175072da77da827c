using System.Globalization;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using JsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Agents;

public static class AgentEndpoints
{
    private const string VersionSort = "-version";

    public static IEndpointRouteBuilder MapAgents(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource("/api/v1/agents", "Agents");

        group.MapPost("/", CreateAsync).WithName("CreateAgent").WithSummary("Create an agent (version 1)")
            .RequireScope(ApiKeyScopes.AgentsWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems();
        group.MapGet("/", ListAsync).WithName("ListAgents").WithSummary("List the workspace's agents, a page at a time")
            .RequireScope(ApiKeyScopes.AgentsRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetAgent").WithSummary("Get an agent as it is now")
            .RequireScope(ApiKeyScopes.AgentsRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateAgent").WithSummary("Change an agent; a real change makes a new version")
            .RequireScope(ApiKeyScopes.AgentsWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems();
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteAgent").WithSummary("Delete an agent (workspace admins); its versions are kept")
            .RequireScope(ApiKeyScopes.AgentsWrite).RequireCurrentWorkspaceRole(Roles.Admin);
        group.MapGet("/{id:guid}/versions", ListVersionsAsync).WithName("ListAgentVersions").WithSummary("List an agent's versions, newest first")
            .RequireScope(ApiKeyScopes.AgentsRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}/versions/{version:int}", GetVersionAsync).WithName("GetAgentVersion").WithSummary("Get one version of an agent")
            .RequireScope(ApiKeyScopes.AgentsRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}/export", ExportAsync).WithName("ExportAgent").WithSummary("Export an agent as a self-contained document")
            .RequireScope(ApiKeyScopes.AgentsRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPost("/import", ImportAsync).WithName("ImportAgent").WithSummary("Create an agent from an exported document")
            .RequireScope(ApiKeyScopes.AgentsWrite).RequireCurrentWorkspaceRole(Roles.Member)
            .ProducesWriteProblems();
        return endpoints;
    }

    internal static Task<Results<Created<AgentResponse>, ProblemHttpResult>> CreateAsync(
        AgentDocument request, CurrentWorkspace workspace, Caller caller, AppDbContext db, IFusionCache cache, TimeProvider clock,
        AuditTrail audit, CancellationToken ct) =>
        AddAsync(request, request.Name, AuditActions.AgentCreated, new Writer(workspace.Id, caller, db, cache, clock, audit), ct);

    /// <summary>A document exported anywhere becomes a new agent here; <paramref name="name"/> renames it (e.g. when its name is taken).</summary>
    internal static async Task<Results<Created<AgentResponse>, ProblemHttpResult>> ImportAsync(
        AgentDocument document, [FromQuery] string? name, CurrentWorkspace workspace, Caller caller, AppDbContext db, IFusionCache cache,
        TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        if (document.Agentry is null)
        {
            return Problem.Validation("agentry", $"An imported document says its format: \"agentry\": \"{AgentContracts.DocumentFormat}\".");
        }
        if (name is not null && string.IsNullOrWhiteSpace(name) | name.Length > Agent.NameMaxLength)
        {
            return Problem.Validation("name", $"The name must be 1-{Agent.NameMaxLength} characters.");
        }
        return await AddAsync(document, name ?? document.Name, AuditActions.AgentImported, new Writer(workspace.Id, caller, db, cache, clock, audit), ct);
    }

    internal static async Task<Results<CachedJson<Page<AgentResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, [FromQuery] string? kind, CurrentWorkspace workspace, HttpContext http, IFusionCache cache,
        IOptions<JsonOptions> json, CancellationToken ct)
    {
        // The DbContext is rented only on a miss: on a hit, renting and resetting it would cost more than the rest of the handler.
        if (page.Resolve(Paging.NamedRowSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        if (kind is not null && !AgentKinds.All.Contains(kind))
        {
            return Problem.Validation("kind", AgentContracts.KindMessage);
        }
        var body = await cache.GetOrSetAsync(
            $"agents:list:json:{workspace.Id}:{sort}:{kind}:{page.Size}:{page.Cursor}",
            async token => CachedJson<Page<AgentResponse>>.Serialize(
                await Live(http.RequestServices.GetRequiredService<AppDbContext>(), workspace.Id).Where(a => kind == null || a.Kind == kind).NamedRowPageAsync(sort, after, page.Size, a => a.ToResponse(), token),
                json),
            tags: [Tag(workspace.Id)],
            token: ct);
        return CachedJson<Page<AgentResponse>>.Of(body);
    }

    internal static async Task<Results<Ok<AgentResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, HttpContext http, IFusionCache cache, CancellationToken ct)
    {
        var agent = await FindAsync(workspace.Id, id, http.RequestServices.GetRequiredService<AppDbContext>, cache, ct);
        return agent is null ? NotFound(id) : TypedResults.Ok(agent);
    }

    /// <summary>The agent as it is now, cached; <paramref name="db"/> is called only on a miss (a hit rents no context).</summary>
    internal static ValueTask<AgentResponse?> FindAsync(Guid workspaceId, Guid id, Func<AppDbContext> db, IFusionCache cache, CancellationToken ct) =>
        cache.GetOrSetAsync(
            $"agent:{workspaceId}:{id}",
            async token => (await Live(db(), workspaceId).FirstOrDefaultAsync(a => a.Id == id, token))?.ToResponse(),
            tags: [Tag(workspaceId)],
            token: ct);

    internal static async Task<Results<Ok<AgentResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateAgentRequest request, CurrentWorkspace workspace, Caller caller, AppDbContext db, IFusionCache cache,
        TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var agent = await db.Agents.FirstOrDefaultAsync(a => a.WorkspaceId == workspace.Id && a.Id == id && a.DeletedAt == null, ct);
        if (agent is null)
        {
            return NotFound(id);
        }
        var kind = request.Kind ?? agent.Kind;
        var before = AgentDefinition.Parse(agent.Definition);
        var definition = before.Apply(request, kind);
        if (AgentContracts.Check(kind, definition) is { Count: > 0 } errors)
        {
            return Problem.Validation(errors);
        }
        var name = request.Name?.Trim() ?? agent.Name;
        var json = definition.ToJson();
        if (name == agent.Name && kind == agent.Kind && json == agent.Definition)
        {
            return TypedResults.Ok(agent.ToResponse()); // nothing changed, so no new version
        }
        var renamed = name != agent.Name;
        (agent.Name, agent.Kind, agent.Definition) = (name, kind, json);
        agent.Version++;
        agent.UpdatedAt = clock.UtcNow();
        db.AgentVersions.Add(agent.Snapshot(caller.Actor));
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return renamed
                ? NameTaken(name)
                : Problem.Conflict("version_conflict", "The agent was changed at the same time; read it again and retry.");
        }
        await cache.RemoveByTagAsync(Tag(workspace.Id), token: ct);
        await audit.RecordAsync(AuditActions.AgentUpdated, AuditOutcomes.Success, workspace.Id, AuditTargets.Agent(id), new { version = agent.Version });
        return TypedResults.Ok(agent.ToWriteResponse(before));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, IFusionCache cache, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var now = clock.UtcNow();
        var deleted = await Live(db, workspace.Id).Where(a => a.Id == id)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.DeletedAt, now).SetProperty(a => a.UpdatedAt, now), ct);
        if (deleted == 0)
        {
            return NotFound(id);
        }
        await cache.RemoveByTagAsync(Tag(workspace.Id), token: ct);
        await audit.RecordAsync(AuditActions.AgentDeleted, AuditOutcomes.Success, workspace.Id, AuditTargets.Agent(id));
        return TypedResults.NoContent();
    }

    internal static async Task<Results<Ok<Page<AgentVersionResponse>>, ProblemHttpResult>> ListVersionsAsync(
        Guid id, [AsParameters] PageRequest page, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve([VersionSort], out _, out var after) is { } invalid)
        {
            return invalid;
        }
        var below = int.MaxValue;
        if (after is not null && (after.Id != id || !int.TryParse(after.Value, CultureInfo.InvariantCulture, out below)))
        {
            return Problem.BadRequest(ProblemCodes.InvalidCursor, "The cursor belongs to another agent's versions.");
        }
        if (!await Live(db, workspace.Id).AnyAsync(a => a.Id == id, ct))
        {
            return NotFound(id);
        }
        var rows = await db.AgentVersions.AsNoTracking().Where(v => v.AgentId == id && v.Version < below)
            .OrderByDescending(v => v.Version).Take(page.Size + 1).ToListAsync(ct);
        return TypedResults.Ok(rows.ToPage(page.Size, last => new Cursor(VersionSort, last.Version.ToString(CultureInfo.InvariantCulture), id), v => v.ToResponse()));
    }

    internal static async Task<Results<Ok<AgentVersionResponse>, ProblemHttpResult>> GetVersionAsync(
        Guid id, int version, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var found = await db.AgentVersions.AsNoTracking()
            .Where(v => v.AgentId == id && v.Version == version && Live(db, workspace.Id).Any(a => a.Id == id))
            .FirstOrDefaultAsync(ct);
        return found is null ? Problem.NotFound($"Agent {id} has no version {version}.") : TypedResults.Ok(found.ToResponse());
    }

    internal static async Task<Results<Ok<AgentDocument>, ProblemHttpResult>> ExportAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        var agent = await Live(db, workspace.Id).FirstOrDefaultAsync(a => a.Id == id, ct);
        return agent is null ? NotFound(id) : TypedResults.Ok(agent.ToExport());
    }

    /// <summary>What a create or an import writes with: the workspace, who acts, and the services the write uses.</summary>
    private sealed record Writer(Guid WorkspaceId, Caller Caller, AppDbContext Db, IFusionCache Cache, TimeProvider Clock, AuditTrail Audit);

    private static async Task<Results<Created<AgentResponse>, ProblemHttpResult>> AddAsync(
        AgentDocument document, string name, string action, Writer w, CancellationToken ct)
    {
        var definition = document.ToDefinition();
        if (AgentContracts.Check(document.Kind, definition) is { Count: > 0 } errors)
        {
            return Problem.Validation(errors);
        }
        var now = w.Clock.UtcNow();
        var actor = w.Caller.Actor;
        var agent = new Agent
        {
            Id = Ids.New(),
            WorkspaceId = w.WorkspaceId,
            Name = name.Trim(),
            Kind = document.Kind,
            Definition = definition.ToJson(),
            Version = 1,
            CreatedAt = now,
            UpdatedAt = now,
            CreatedBy = actor,
        };
        w.Db.Agents.Add(agent);
        w.Db.AgentVersions.Add(agent.Snapshot(actor));
        try
        {
            await w.Db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(agent.Name);
        }
        await w.Cache.RemoveByTagAsync(Tag(w.WorkspaceId), token: ct);
        await w.Audit.RecordAsync(action, AuditOutcomes.Success, w.WorkspaceId, AuditTargets.Agent(agent.Id), new { name = agent.Name, kind = agent.Kind });
        return TypedResults.Created($"/api/v1/agents/{agent.Id}", agent.ToWriteResponse(before: null));
    }

    private static IQueryable<Agent> Live(AppDbContext db, Guid workspaceId) =>
        db.Agents.AsNoTracking().Where(a => a.WorkspaceId == workspaceId && a.DeletedAt == null);

    private static AgentVersion Snapshot(this Agent a, Guid? actor) => new()
    {
        AgentId = a.Id,
        Version = a.Version,
        Name = a.Name,
        Kind = a.Kind,
        Definition = a.Definition,
        CreatedAt = a.UpdatedAt,
        CreatedBy = actor,
    };

    /// <summary>One tag for all of a workspace's cached agent reads: any change drops them together, on every node.</summary>
    internal static string Tag(Guid workspaceId) => $"agents:{workspaceId}";

    private static ProblemHttpResult NameTaken(string name) =>
        Problem.Conflict("name_taken", $"An agent named '{name}' already exists in this workspace.");

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Agent {id} was not found.");
}
