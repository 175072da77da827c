using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Agentry.Agents;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Tasks;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Knowledge;

/// <summary>
/// Submits ingestions as tasks on the durable queue. A task belongs to an agent (the worker picks its handler by the
/// agent's kind and the row references the agent), so each workspace gets one system agent of kind
/// <see cref="IngestionTaskHandler.AgentKind"/>, made on first use with an id derived from the workspace (two nodes making it
/// at once make the same row). It is created already retired (<c>DeletedAt</c> set): the agents API, chat and task
/// submission only see live agents, so users can neither list, change nor hand tasks to it, while the worker, which reads
/// agent versions, runs its tasks like any other: leases, retries, events, the sweeper.
/// </summary>
internal sealed class KnowledgeIngestion(
    IServiceScopeFactory scopes, TaskWriter writer, TaskSignal signal, TaskMetrics metrics, TimeProvider clock, IOptions<KnowledgeOptions> options)
{
    public const string AgentName = "knowledge-ingestion";

    private readonly ConcurrentDictionary<Guid, bool> _agents = new();

    /// <summary>The workspace's ingestion agent id (stable: derived from the workspace id).</summary>
    public static Guid AgentId(Guid workspaceId)
    {
        var bytes = SHA256.HashData(workspaceId.ToByteArray().Concat("agentry:knowledge-ingestion"u8.ToArray()).ToArray())[..16];
        bytes[7] = (byte)((bytes[7] & 0x0F) | 0x80); // version 8 (name-based, custom), in .NET's little-endian field order
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes);
    }

    /// <summary>Adds an ingestion task for each document to <paramref name="db"/> (saved with the caller's other changes) and points each document at it.</summary>
    public async Task AddTasksAsync(AppDbContext db, Guid workspaceId, IReadOnlyList<KnowledgeDocument> documents, Guid? actor, CancellationToken ct)
    {
        await EnsureAgentAsync(workspaceId, ct);
        var now = clock.UtcNow();
        var runAt = now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMicrosecond));
        var tasks = documents.Select(d => new AgentTask
        {
            Id = Ids.New(),
            WorkspaceId = workspaceId,
            AgentId = AgentId(workspaceId),
            AgentVersion = 1,
            Kind = IngestionTaskHandler.AgentKind,
            Status = AgentTaskStatus.Queued,
            Priority = TaskContracts.DefaultPriority,
            RunAt = runAt,
            MaxAttempts = options.Value.MaxAttempts,
            TimeoutSeconds = options.Value.TimeoutSeconds,
            Input = JsonSerializer.Serialize(new IngestionInput(d.Id), JsonSerializerOptions.Web),
            LastEventSeq = 1,
            CreatedAt = now,
            CreatedBy = actor,
        }).ToList();
        for (var i = 0; i < documents.Count; i++)
        {
            documents[i].TaskId = tasks[i].Id;
        }
        writer.AddTo(db, tasks);
    }

    /// <summary>Wakes the workers once the tasks are committed.</summary>
    public void Submitted(int count)
    {
        metrics.Submitted(count);
        signal.Pulse();
    }

    private async Task EnsureAgentAsync(Guid workspaceId, CancellationToken ct)
    {
        if (_agents.ContainsKey(workspaceId))
        {
            return;
        }
        var id = AgentId(workspaceId);
        // A context of its own, so a lost race (another node made the agent first) leaves the caller's changes untouched.
        await using var scope = scopes.CreateAsyncScope();
        var own = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        if (!await own.Agents.AnyAsync(a => a.Id == id, ct))
        {
            var now = clock.UtcNow();
            var definition = new AgentDefinition(
                "Built in: ingests documents into knowledge collections.", null, null, [], [], new AgentLimits(TimeoutSeconds: Math.Min(options.Value.TimeoutSeconds, 3_600)), null)
                .ToJson();
            own.Agents.Add(new Agent
            {
                Id = id, WorkspaceId = workspaceId, Name = AgentName, Kind = IngestionTaskHandler.AgentKind, Definition = definition, Version = 1,
                CreatedAt = now, UpdatedAt = now, DeletedAt = now,
            });
            own.AgentVersions.Add(new AgentVersion
            {
                AgentId = id, Version = 1, Name = AgentName, Kind = IngestionTaskHandler.AgentKind, Definition = definition, CreatedAt = now,
            });
            try
            {
                await own.SaveChangesAsync(ct);
            }
            catch (DbUpdateException ex) when (ex.IsUniqueViolation())
            {
            }
        }
        _agents[workspaceId] = true;
    }
}

/// <summary>An ingestion task's input.</summary>
internal sealed record IngestionInput(Guid DocumentId);
