using System.Security.Cryptography;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

internal static class DocumentEndpoints
{
    private static readonly string Formats = string.Join(", ", DocumentFormats.All);

    public static void Map(RouteGroupBuilder group)
    {
        group.MapPost("/{id:guid}/documents", AddAsync).WithName("AddDocument")
            .WithSummary("Add a document (a multipart upload in the field 'file', or JSON { \"url\": … }); its ingestion runs as a task")
            .Accepts<AddDocumentFromUrlRequest>("application/json", "multipart/form-data")
            .RequireScope(ApiKeyScopes.KnowledgeWrite).RequireCurrentWorkspaceRole(Roles.Member).ProducesWriteProblems()
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity).ProducesProblem(StatusCodes.Status502BadGateway);
        group.MapGet("/{id:guid}/documents", ListAsync).WithName("ListDocuments").WithSummary("List a collection's documents, a page at a time")
            .RequireScope(ApiKeyScopes.KnowledgeRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapGet("/{id:guid}/documents/{documentId:guid}", GetAsync).WithName("GetDocument")
            .WithSummary("Get a document with the status of each ingestion step")
            .RequireScope(ApiKeyScopes.KnowledgeRead).RequireCurrentWorkspaceRole(Roles.Viewer);
        group.MapDelete("/{id:guid}/documents/{documentId:guid}", DeleteAsync).WithName("DeleteDocument")
            .WithSummary("Delete a document with its chunks and vectors")
            .RequireScope(ApiKeyScopes.KnowledgeWrite).RequireCurrentWorkspaceRole(Roles.Member);
    }

    internal static async Task<Results<Accepted<AddDocumentResponse>, Ok<AddDocumentResponse>, ProblemHttpResult>> AddAsync(
        Guid id, HttpRequest request, CurrentWorkspace workspace, Caller caller, AppDbContext db, KnowledgeIngestion ingestion,
        IHttpClientFactory clients, IOptions<KnowledgeOptions> options, TimeProvider clock, AuditTrail audit, CancellationToken ct)
    {
        var collection = await CollectionEndpoints.FindAsync(db, workspace.Id, id, ct);
        if (collection is null)
        {
            return CollectionEndpoints.NotFound(id);
        }
        var max = options.Value.MaxDocumentBytes;
        var received = request.HasFormContentType ? await UploadAsync(request, max, ct)
            : request.HasJsonContentType() ? await FetchAsync(request, clients, max, ct)
            : new Received(Problem: Problem.UnsupportedMediaType("Send the document as multipart/form-data (field 'file') or JSON { \"url\": … }."));
        if (received.Problem is { } problem)
        {
            return problem;
        }
        var document = new KnowledgeDocument
        {
            Id = Ids.New(),
            WorkspaceId = workspace.Id,
            CollectionId = collection.Id,
            Name = received.Name!.Length > KnowledgeDocument.NameMaxLength ? received.Name[..KnowledgeDocument.NameMaxLength] : received.Name,
            SourceUrl = received.Url,
            Format = received.Format!,
            Sha256 = Convert.ToHexStringLower(SHA256.HashData(received.Content!)),
            SizeBytes = received.Content!.Length,
            Content = received.Content,
            Status = DocumentStatuses.Queued,
            CreatedAt = clock.UtcNow(),
            UpdatedAt = clock.UtcNow(),
            CreatedBy = caller.Actor,
        };
        if (await FindByHashAsync(db, collection.Id, document.Sha256, ct) is { } existing)
        {
            return TypedResults.Ok(new AddDocumentResponse(existing.ToResponse(), Duplicate: true));
        }
        db.KnowledgeDocuments.Add(document);
        await ingestion.AddTasksAsync(db, workspace.Id, [document], caller.Actor, ct);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            // The same content arrived concurrently: answer with the document that won.
            db.ChangeTracker.Clear();
            return TypedResults.Ok(new AddDocumentResponse((await FindByHashAsync(db, collection.Id, document.Sha256, ct))!.ToResponse(), Duplicate: true));
        }
        ingestion.Submitted(1);
        await audit.RecordAsync(AuditActions.DocumentAdded, AuditOutcomes.Success, workspace.Id, AuditTargets.Document(document.Id),
            new { collectionId = collection.Id, name = document.Name, format = document.Format, bytes = document.SizeBytes });
        return TypedResults.Accepted($"{CollectionEndpoints.Url}/{collection.Id}/documents/{document.Id}", new AddDocumentResponse(document.ToResponse(), Duplicate: false));
    }

    internal static async Task<Results<Ok<Page<DocumentResponse>>, ProblemHttpResult>> ListAsync(
        Guid id, [AsParameters] PageRequest page, [FromQuery] string? status, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct)
    {
        if (page.Resolve(Paging.CreationSorts, out var sort, out var after) is { } invalid)
        {
            return invalid;
        }
        if (status is not null and not (DocumentStatuses.Queued or DocumentStatuses.Processing or DocumentStatuses.Ready or DocumentStatuses.Failed))
        {
            return Problem.Validation("status", "The status must be one of: queued, processing, ready, failed.");
        }
        if (await CollectionEndpoints.FindAsync(db, workspace.Id, id, ct) is null)
        {
            return CollectionEndpoints.NotFound(id);
        }
        return TypedResults.Ok(await db.KnowledgeDocuments.AsNoTracking()
            .Where(d => d.WorkspaceId == workspace.Id && d.CollectionId == id && (status == null || d.Status == status))
            .CreationPageAsync(sort, after, page.Size, d => d.ToResponse(), ct));
    }

    internal static async Task<Results<Ok<DocumentResponse>, ProblemHttpResult>> GetAsync(
        Guid id, Guid documentId, CurrentWorkspace workspace, AppDbContext db, CancellationToken ct) =>
        await FindAsync(db, workspace.Id, id, documentId, ct) is { } document ? TypedResults.Ok(document.ToResponse()) : NotFound(documentId);

    internal static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(
        Guid id, Guid documentId, CurrentWorkspace workspace, AppDbContext db, VectorIndexes indexes, AuditTrail audit, CancellationToken ct)
    {
        var collection = await CollectionEndpoints.FindAsync(db, workspace.Id, id, ct);
        if (collection is null || await FindAsync(db, workspace.Id, id, documentId, ct) is null)
        {
            return NotFound(documentId);
        }
        // The rows first (the chunks go with the document), then the vectors: a search in between drops vectors whose chunk is gone.
        await db.KnowledgeDocuments.Where(d => d.Id == documentId).ExecuteDeleteAsync(ct);
        await indexes.For(collection).DeleteDocumentAsync(VectorIndexes.Of(collection), documentId, ct);
        await audit.RecordAsync(AuditActions.DocumentDeleted, AuditOutcomes.Success, workspace.Id, AuditTargets.Document(documentId), new { collectionId = id });
        return TypedResults.NoContent();
    }

    private static Task<KnowledgeDocument?> FindAsync(AppDbContext db, Guid workspaceId, Guid collectionId, Guid id, CancellationToken ct) =>
        db.KnowledgeDocuments.AsNoTracking().FirstOrDefaultAsync(d => d.WorkspaceId == workspaceId && d.CollectionId == collectionId && d.Id == id, ct);

    private static Task<KnowledgeDocument?> FindByHashAsync(AppDbContext db, Guid collectionId, string sha256, CancellationToken ct) =>
        db.KnowledgeDocuments.AsNoTracking().FirstOrDefaultAsync(d => d.CollectionId == collectionId && d.Sha256 == sha256, ct);

    private static async Task<Received> UploadAsync(HttpRequest request, long max, CancellationToken ct)
    {
        // The document limit, not the host's (smaller) limit for JSON bodies; a little more for the multipart framing.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = max + 64 * 1024;
        }
        var form = await request.ReadFormAsync(ct);
        var file = form.Files.GetFile("file");
        if (file is null || file.Length == 0)
        {
            return new Received(Problem: Problem.Validation("file", "Send the document in the multipart field 'file', not empty."));
        }
        if (file.Length > max)
        {
            return new Received(Problem: TooLarge(max));
        }
        var format = form["format"].FirstOrDefault() is { Length: > 0 } named ? named : DocumentFormats.Detect(file.ContentType, file.FileName);
        if (format is null || !DocumentFormats.All.Contains(format))
        {
            return new Received(Problem: Unsupported(file.ContentType, file.FileName));
        }
        using var memory = new MemoryStream((int)file.Length);
        await file.CopyToAsync(memory, ct);
        return new Received(file.FileName, null, format, memory.ToArray());
    }

    /// <summary>Fetches the URL through the egress guard (no private addresses, capped in size and time).</summary>
    private static async Task<Received> FetchAsync(HttpRequest request, IHttpClientFactory clients, long max, CancellationToken ct)
    {
        var body = await request.ReadFromJsonAsync<AddDocumentFromUrlRequest>(ct);
        if (body is null || !Uri.TryCreate(body.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
        {
            return new Received(Problem: Problem.Validation("url", "The url must be an absolute http or https URL."));
        }
        if (body.Format is not null && !DocumentFormats.All.Contains(body.Format))
        {
            return new Received(Problem: Problem.Validation("format", $"The format must be one of: {Formats}."));
        }
        try
        {
            using var response = await clients.CreateClient(EgressExtensions.ClientName).GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode)
            {
                return new Received(Problem: Problem.BadGateway("fetch_failed", $"{url.Host} answered {(int)response.StatusCode} {response.ReasonPhrase}."));
            }
            if (response.Content.Headers.ContentLength > max)
            {
                return new Received(Problem: TooLarge(max));
            }
            var format = body.Format ?? DocumentFormats.Detect(response.Content.Headers.ContentType?.MediaType, url.AbsolutePath);
            if (format is null)
            {
                return new Received(Problem: Unsupported(response.Content.Headers.ContentType?.MediaType, url.AbsolutePath));
            }
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            using var memory = new MemoryStream();
            var buffer = new byte[81_920];
            int read;
            while ((read = await stream.ReadAsync(buffer, ct)) > 0)
            {
                memory.Write(buffer, 0, read);
                if (memory.Length > max)
                {
                    return new Received(Problem: TooLarge(max));
                }
            }
            return new Received(url.ToString(), url.ToString(), format, memory.ToArray());
        }
        catch (HttpRequestException failed) when ((failed as EgressDeniedException ?? failed.InnerException as EgressDeniedException) is { } denied)
        {
            return new Received(Problem: Problem.Unprocessable("url_not_allowed", denied.Message));
        }
        catch (HttpRequestException failed)
        {
            return new Received(Problem: Problem.BadGateway("fetch_failed", $"Fetching {url.Host} failed: {failed.Message}"));
        }
        catch (TaskCanceledException) when (!ct.IsCancellationRequested)
        {
            return new Received(Problem: Problem.GatewayTimeout("fetch_timeout", $"{url.Host} did not answer in time."));
        }
    }

    private static ProblemHttpResult TooLarge(long max) =>
        Problem.PayloadTooLarge($"The document is larger than the {max:N0} bytes a document may have (Agentry:Knowledge:MaxDocumentBytes).");

    private static ProblemHttpResult Unsupported(string? contentType, string? name) =>
        Problem.UnsupportedMediaType($"'{name}' ({contentType ?? "no content type"}) is not a supported format; supported: {Formats}.");

    private static ProblemHttpResult NotFound(Guid id) => Problem.NotFound($"Document {id} was not found.");

    private sealed record Received(string? Name = null, string? Url = null, string? Format = null, byte[]? Content = null, ProblemHttpResult? Problem = null);
}
