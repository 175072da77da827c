using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Models;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

public static class CollectionEndpoints
{
    internal const string Url = "/api/v1/collections";

    public static IEndpointRouteBuilder MapKnowledge(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapWorkspaceResource(Url, "Knowledge");

        group.MapPost("/", CreateAsync).WithName("CreateCollection").WithSummary("Create a knowledge collection")
            .RequireScope(ApiKeyScopes.KnowledgeWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesWriteProblems();
        group.MapGet("/", ListAsync).WithName("ListCollections").WithSummary("List the workspace's collections, a page at a time")
            .RequireScope(ApiKeyScopes.KnowledgeRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}", GetAsync).WithName("GetCollection").WithSummary("Get a collection")
            .RequireScope(ApiKeyScopes.KnowledgeRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapPatch("/{id:guid}", UpdateAsync).WithName("UpdateCollection")
            .WithSummary("Change a collection; a new embedding model or chunk setting re-ingests its documents in the background")
            .RequireScope(ApiKeyScopes.KnowledgeWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesWriteProblems();
        group.MapDelete("/{id:guid}", DeleteAsync).WithName("DeleteCollection").WithSummary("Delete a collection with its documents, chunks and vectors")
            .RequireScope(ApiKeyScopes.KnowledgeWrite).RequireCurrentWorkspaceRole(Roles.Member);
        DocumentEndpoints.Map(group);
        SearchEndpoints.Map(group);
        return endpoints;
    }

    internal static async Task<Results<Created<CollectionResponse>, ProblemHttpResult>> CreateAsync(
        CreateCollectionRequest request, CurrentWorkspace workspace, Caller caller, AppDbContext db, EmbeddingModels models,
        IOptions<KnowledgeOptions> options, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var chunkTokens = request.ChunkTokens ?? Math.Min(options.Value.DefaultChunkTokens, models.Tokens?.MaxInputTokens ?? int.MaxValue);
        var chunkOverlap = request.ChunkOverlap ?? Math.Min(options.Value.DefaultChunkOverlap, chunkTokens / 4);
        if (Check(request.EmbeddingModel ?? models.Id, request.Dimensions, chunkTokens, chunkOverlap, models, out var dimensions) is { } invalid)
        {
            return invalid;
        }
        var provider = request.VectorProvider ?? VectorProviders.Embedded;
        if (!options.Value.Serves(provider))
        {
            return Problem.Validation("vectorProvider", $"The vector provider '{provider}' is not configured on this installation.");
        }
        var now = clock.UtcNow();
        var collection = new KnowledgeCollection
        {
            Id = Ids.New(),
            WorkspaceId = workspace.Id,
            Name = request.Name.Trim(),
            Description = request.Description,
            EmbeddingModel = models.Id,
            Dimensions = dimensions,
            ChunkTokens = chunkTokens,
            ChunkOverlap = chunkOverlap,
            VectorProvider = provider,
            CreatedAt = now,
            UpdatedAt = now,
            CreatedBy = caller.Actor,
        };
        db.KnowledgeCollections.Add(collection);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(collection.Name);
        }
        await audit.RecordAsync(AuditActions.CollectionCreated, AuditOutcomes.Success, workspace.Id, AuditTargets.Collection(collection.Id), new { name = collection.Name });
        return TypedResults.Created($"{Url}/{collection.Id}", collection.ToResponse());
    }

    internal static async Task<Results<Ok<Page<CollectionResponse>>, ProblemHttpResult>> ListAsync(
        [AsParameters] PageRequest page, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Paging.NamedRowSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        return TypedResults.Ok(await db.KnowledgeCollections.AsNoTracking().Where(c => c.WorkspaceId == workspace.Id)
            .NamedRowPageAsync(sort, after, page.Size, c => c.ToResponse(), ct));
    }

    internal static async Task<Results<Ok<CollectionResponse>, ProblemHttpResult>> GetAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct) =>
        await FindAsync(db, workspace.Id, id, ct) is { } collection ? TypedResults.Ok(collection.ToResponse()) : NotFound(id);

    internal static async Task<Results<Ok<CollectionResponse>, ProblemHttpResult>> UpdateAsync(
        Guid id, UpdateCollectionRequest request, CurrentWorkspace workspace, Caller caller, AppDbContext db, EmbeddingModels models,
        KnowledgeIngestion ingestion, VectorIndexes indexes, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var collection = await db.KnowledgeCollections.FirstOrDefaultAsync(c => c.WorkspaceId == workspace.Id && c.Id == id, ct);
        if (collection is null)
        {
            return NotFound(id);
        }
        var chunkTokens = request.ChunkTokens ?? collection.ChunkTokens;
        var chunkOverlap = request.ChunkOverlap ?? Math.Min(collection.ChunkOverlap, chunkTokens - 1);
        var model = request.EmbeddingModel ?? collection.EmbeddingModel;
        var modelChanged = model != collection.EmbeddingModel;
        var dimensions = collection.Dimensions;
        var sentDimensions = !modelChanged && request.Dimensions == collection.Dimensions ? null : request.Dimensions;
        if (Check(modelChanged ? model : null, sentDimensions, chunkTokens, chunkOverlap, models, out var known) is { } invalid)
        {
            return invalid;
        }
        dimensions = modelChanged ? known : dimensions;
        var reingest = modelChanged || chunkTokens != collection.ChunkTokens || chunkOverlap != collection.ChunkOverlap;
        collection.Name = request.Name?.Trim() ?? collection.Name;
        collection.Description = request.Description ?? collection.Description;
        (collection.EmbeddingModel, collection.Dimensions, collection.ChunkTokens, collection.ChunkOverlap) = (model, dimensions, chunkTokens, chunkOverlap);
        collection.UpdatedAt = clock.UtcNow();
        var documents = 0;
        if (reingest)
        {
            // Every document goes through the pipeline again from its chunk step (its extracted text stays); the old
            // vectors go at once, so a search never mixes two models' vectors.
            await indexes.For(collection).DropAsync(VectorIndexes.Of(collection), ct);
            var all = await db.KnowledgeDocuments.Where(d => d.CollectionId == collection.Id).ToListAsync(ct);
            foreach (var document in all)
            {
                (document.StepsDone, document.Status, document.FailedStep, document.Error, document.UpdatedAt) =
                    (Math.Min(document.StepsDone, 1), DocumentStatuses.Queued, null, null, collection.UpdatedAt);
            }
            await ingestion.AddTasksAsync(db, workspace.Id, all, caller.Actor, ct);
            documents = all.Count;
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            return NameTaken(collection.Name);
        }
        if (documents > 0)
        {
            ingestion.Submitted(documents);
        }
        await audit.RecordAsync(AuditActions.CollectionUpdated, AuditOutcomes.Success, workspace.Id, AuditTargets.Collection(collection.Id),
            new { name = collection.Name, reingested = documents });
        return TypedResults.Ok(collection.ToResponse());
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, CurrentWorkspace workspace, AppDbContext db, VectorIndexes indexes, AuditTrail audit, CancellationToken ct)
    {
        var collection = await FindAsync(db, workspace.Id, id, ct);
        if (collection is null)
        {
            return NotFound(id);
        }
        // Documents and chunks go with the row (cascade); their ingestion tasks find no document and end.
        await db.KnowledgeCollections.Where(c => c.Id == id).ExecuteDeleteAsync(ct);
        await indexes.For(collection).DropAsync(VectorIndexes.Of(collection), ct);
        await audit.RecordAsync(AuditActions.CollectionDeleted, AuditOutcomes.Success, workspace.Id, AuditTargets.Collection(id), new { name = collection.Name });
        return TypedResults.NoContent();
    }

    internal static Task<KnowledgeCollection?> FindAsync(AppDbContext db, Guid workspaceId, Guid id, CancellationToken ct) =>
        db.KnowledgeCollections.AsNoTracking().FirstOrDefaultAsync(c => c.WorkspaceId == workspaceId && c.Id == id, ct);

    internal static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Collection {id} was not found.");

    /// <summary>
    /// A model given (null: unchanged) must be one the catalog serves for embeddings (this installation has one), with the
    /// vector length the model makes; a chunk must fit the model's input, with its overlap smaller than the chunk.
    /// </summary>
    private static ProblemHttpResult? Check(string? model, int? dimensions, int chunkTokens, int chunkOverlap, EmbeddingModels models, out int known)
    {
        known = models.Dimensions ?? dimensions ?? 0;
        var errors = new Dictionary<string, string[]>();
        if (model is null)
        {
            if (dimensions is not null)
            {
                errors["dimensions"] = ["The vector length follows the embedding model; change embeddingModel to change it."];
            }
        }
        else if (model != models.Id)
        {
            errors["embeddingModel"] = [$"'{model}' is not an embedding model here; the embedding models are: {models.Id}."];
        }
        else if (known == 0)
        {
            errors["dimensions"] = [$"The vector length of '{models.Id}' is not known yet: send it as dimensions."];
        }
        else if (dimensions is not null && dimensions != known)
        {
            errors["dimensions"] = [$"'{models.Id}' makes {known}-dimensional vectors, not {dimensions}."];
        }
        if (models.Tokens is { } tokens && chunkTokens > tokens.MaxInputTokens)
        {
            errors["chunkTokens"] = [$"'{models.Id}' reads at most {tokens.MaxInputTokens} tokens, so a chunk can have at most that many."];
        }
        if (chunkOverlap >= chunkTokens)
        {
            errors["chunkOverlap"] = ["The overlap must be smaller than the chunk size (chunkTokens)."];
        }
        return errors.Count == 0 ? null : Problem.Validation(errors);
    }

    private static ProblemHttpResult NameTaken(string name) =>
        Problem.Conflict("name_taken", $"A collection named '{name}' already exists in this workspace.");
}
