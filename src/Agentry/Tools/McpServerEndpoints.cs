using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Tools;

public static class McpServerEndpoints
{
    public static IEndpointRouteBuilder MapMcpServers(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource("/api/v1/mcp-servers", "MCP servers");

        group.MapPost("/", CreateAsync).WithName("CreateMcpServer").WithSummary("Register an MCP server (stdio command or Streamable HTTP url) for the workspace")
            .RequireScope(ApiKeyScopes.Admin).RequireCurrentWorkspaceRole(Roles.Admin).ProducesWriteProblems();
        group.MapGet("/", ListAsync).WithName("ListMcpServers").WithSummary("List the workspace's MCP servers with their live status, a page at a time")
            .RequireScope(ApiKeyScopes.ToolsCall).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetMcpServer").WithSummary("Get an MCP server and its live status on this node")
            .RequireScope(ApiKeyScopes.ToolsCall).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateMcpServer").WithSummary("Change an MCP server; its session restarts with the new configuration on next use")
            .RequireScope(ApiKeyScopes.Admin).RequireCurrentWorkspaceRole(Roles.Admin).ProducesWriteProblems();
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteMcpServer").WithSummary("Remove an MCP server and stop its process")
            .RequireScope(ApiKeyScopes.Admin).RequireCurrentWorkspaceRole(Roles.Admin);
        return endpoints;
    }

    internal static async Task<Results<Created<McpServerResponse>, ProblemHttpResult>> CreateAsync(
        CreateMcpServerRequest request, CurrentWorkspace workspace, Caller caller, AppDbContext db, McpSupervisor supervisor,
        McpSecretProtection secrets, EgressGuard egress, IFusionCache cache, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var spec = request.ToSpec();
        if (McpServerContracts.Check(spec, egress.Refuses) is { Count: > 0 } errors)
        {
            return Problem.Validation(errors);
        }
        var now = clock.UtcNow();
        var id = Ids.New();
        var server = new McpServer
        {
            Id = id,
            WorkspaceId = workspace.Id,
            Name = spec.Name,
            Transport = spec.Transport,
            Definition = spec.ToDefinition().ToJson(),
            Secrets = secrets.Seal(id, spec.ToSecrets()),
            Enabled = spec.Enabled,
            CallTimeoutSeconds = spec.CallTimeoutSeconds,
            RequireApproval = spec.RequireApproval,
            CreatedAt = now,
            UpdatedAt = now,
            CreatedBy = caller.Actor,
        };
        db.McpServers.Add(server);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(server.Name);
        }
        await cache.RemoveByTagAsync(McpToolCatalog.Tag(workspace.Id), token: CancellationToken.None);
        await audit.RecordAsync(McpAuditActions.ServerCreated, AuditOutcomes.Success, workspace.Id, Target(id),
            new { name = server.Name, transport = server.Transport, environment = spec.Environment.Keys, headers = spec.Headers.Keys });
        return TypedResults.Created($"/api/v1/mcp-servers/{id}", server.ToResponse(supervisor.StatusOf(server)));
    }

    internal static async Task<Results<Ok<Page<McpServerResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, CurrentWorkspace workspace, AppDbContext db, McpSupervisor supervisor, CancellationToken ct)
    {
        if (page.Resolve(Paging.NamedRowSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        return TypedResults.Ok(await db.McpServers.AsNoTracking().Where(s => s.WorkspaceId == workspace.Id)
            .NamedRowPageAsync(sort, after, page.Size, s => s.ToResponse(supervisor.StatusOf(s)), ct));
    }

    internal static async Task<Results<Ok<McpServerResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, McpSupervisor supervisor, CancellationToken ct)
    {
        var server = await db.McpServers.AsNoTracking().FirstOrDefaultAsync(s => s.WorkspaceId == workspace.Id && s.Id == id, ct);
        return server is null ? NotFound(id) : TypedResults.Ok(server.ToResponse(supervisor.StatusOf(server)));
    }

    internal static async Task<Results<Ok<McpServerResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateMcpServerRequest request, CurrentWorkspace workspace, AppDbContext db, McpSupervisor supervisor,
        McpSecretProtection secrets, EgressGuard egress, IFusionCache cache, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var server = await db.McpServers.FirstOrDefaultAsync(s => s.WorkspaceId == workspace.Id && s.Id == id, ct);
        if (server is null)
        {
            return NotFound(id);
        }
        var spec = request.Apply(server, McpServerDefinition.Parse(server.Definition), secrets.Open(id, server.Secrets));
        if (McpServerContracts.Check(spec, egress.Refuses) is { Count: > 0 } errors)
        {
            return Problem.Validation(errors);
        }
        (server.Name, server.Transport, server.Definition) = (spec.Name, spec.Transport, spec.ToDefinition().ToJson());
        (server.Enabled, server.CallTimeoutSeconds, server.RequireApproval) = (spec.Enabled, spec.CallTimeoutSeconds, spec.RequireApproval);
        server.Secrets = secrets.Seal(id, spec.ToSecrets());
        server.UpdatedAt = clock.UtcNow();
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(spec.Name);
        }
        await cache.RemoveByTagAsync(McpToolCatalog.Tag(workspace.Id), token: CancellationToken.None);
        await supervisor.StopAsync(id);
        await audit.RecordAsync(McpAuditActions.ServerUpdated, AuditOutcomes.Success, workspace.Id, Target(id),
            new { name = server.Name, environment = request.Environment?.Keys, headers = request.Headers?.Keys });
        return TypedResults.Ok(server.ToResponse(supervisor.StatusOf(server)));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, McpSupervisor supervisor, IFusionCache cache, AuditTrail audit, CancellationToken ct)
    {
        var deleted = await db.McpServers.Where(s => s.WorkspaceId == workspace.Id && s.Id == id).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return NotFound(id);
        }
        await cache.RemoveByTagAsync(McpToolCatalog.Tag(workspace.Id), token: CancellationToken.None);
        await supervisor.StopAsync(id);
        await audit.RecordAsync(McpAuditActions.ServerDeleted, AuditOutcomes.Success, workspace.Id, Target(id));
        return TypedResults.NoContent();
    }

    private static string Target(Guid id) => $"mcpserver:{id}";

    private static ProblemHttpResult NameTaken(string name) =>
        Problem.Conflict("name_taken", $"An MCP server named '{name}' already exists in this workspace.");

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"MCP server {id} was not found.");
}

public static class McpAuditActions
{
    public const string ServerCreated = "mcpserver.created";
    public const string ServerUpdated = "mcpserver.updated";
    public const string ServerDeleted = "mcpserver.deleted";
    public const string ToolCall = McpToolCatalog.AuditAction;
}
