using System.Text;
using System.Text.Json;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Agentry.Tasks;

/// <summary>
/// On every node: publishes due outbox rows to the task queue, highest priority first and then oldest
/// due, as persistent messages with publisher confirms, and deletes each row only after the broker
/// confirmed it. It also puts tasks the broker lost back on the outbox (see <see cref="RepublishLostAsync"/>).
/// On PostgreSQL a batch is claimed with <c>FOR UPDATE SKIP LOCKED</c> for the duration of the publish, so
/// nodes relaying at once publish different rows; a duplicate that slips through anyway is harmless,
/// because leasing a task is conditional.
/// </summary>
internal sealed class RabbitMqOutboxRelay(
    RabbitMqConnection connection,
    IServiceScopeFactory scopes,
    IOptions<StorageOptions> storage,
    IOptions<TaskOptions> options,
    TaskSignal signal,
    TimeProvider clock,
    ILogger<RabbitMqOutboxRelay> logger) : BackgroundService
{
    public const string PriorityHeader = "priority";
    public const string TaskIdHeader = "task-id";
    internal const int BatchSize = 500;
    /// <summary>While the broker stays away, one warning per this many failed tries (one a second), not one for each.</summary>
    internal const int LogEveryFailures = 60;
    private static readonly TimeSpan ConfirmTimeout = TimeSpan.FromSeconds(30);

    private readonly TaskSql _sql = new(storage.Value.Provider == StorageOptions.Postgres);
    private readonly TaskOptions _options = options.Value;
    private IChannel? _channel;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var republishEvery = TimeSpan.FromTicks(Math.Clamp(_options.RepublishAfter.Ticks / 4, TimeSpan.FromMilliseconds(250).Ticks, TimeSpan.FromMinutes(1).Ticks));
        var lastRepublish = clock.GetUtcNow();
        var failures = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (clock.GetUtcNow() - lastRepublish >= republishEvery)
                {
                    lastRepublish = clock.GetUtcNow();
                    await RepublishLostSafelyAsync(stoppingToken);
                }
                var published = 0;
                try
                {
                    published = await RelayAsync(stoppingToken);
                    failures = 0;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    if (failures++ % LogEveryFailures == 0)
                    {
                        TaskLog.RelayFailed(logger, failures, ex);
                    }
                    await CloseChannelAsync();
                    await Task.Delay(RabbitMqConnection.ReconnectDelay, stoppingToken);
                    continue;
                }
                if (published < BatchSize)
                {
                    // Submissions on this node wake the relay at once; rows written elsewhere, or falling due, wait a poll.
                    await signal.WaitAsync(_options.PollInterval, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await CloseChannelAsync();
    }

    /// <summary>Publishes one batch of due rows; returns how many were confirmed (and deleted).</summary>
    internal async Task<int> RelayAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.OpenConnectionAsync(ct);
        // SQLite has one writer and one node, so it needs no claim (and must not hold its write lock while publishing).
        await using var claim = _sql.Postgres ? await db.Database.BeginTransactionAsync(ct) : null;
        var rows = await TaskSql.ReadAsync(_sql.Command(db, $"""
            SELECT "Id", "TaskId", "Priority" FROM task_outbox WHERE "DueAt" <= @now
            ORDER BY "Priority" DESC, "DueAt", "Id" LIMIT {BatchSize}{_sql.SkipLocked}
            """, new Dictionary<string, object?> { ["@now"] = clock.UtcNow() }), r => new Row(r.GetInt64(0), r.GetGuid(1), r.GetInt32(2)), ct);
        if (rows.Count == 0)
        {
            return 0;
        }
        var channel = await ChannelAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ConfirmTimeout);
        // All in flight at once, each awaiting its own confirm (the client's batch pattern).
        var publishes = rows.Select(row => PublishAsync(channel, row, timeout.Token)).ToList();
        Exception? failure = null;
        try
        {
            await Task.WhenAll(publishes);
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        var confirmed = rows.Where((_, i) => publishes[i].IsCompletedSuccessfully).Select(r => r.Id).ToList();
        if (confirmed.Count > 0)
        {
            var ids = _sql.Postgres ? (object)confirmed.ToArray() : JsonSerializer.Serialize(confirmed);
            await using var delete = _sql.Command(db, $"""
                DELETE FROM task_outbox WHERE {_sql.InIds("\"Id\"", "@ids")}
                """, new Dictionary<string, object?> { ["@ids"] = ids });
            await delete.ExecuteNonQueryAsync(ct);
        }
        if (claim is not null)
        {
            await claim.CommitAsync(ct);
        }
        if (failure is not null)
        {
            // The rest stay on the outbox for the next try.
            throw new InvalidOperationException($"The broker confirmed {confirmed.Count} of {rows.Count} task messages.", failure);
        }
        return confirmed.Count;
    }

    private Task PublishAsync(IChannel channel, Row row, CancellationToken ct)
    {
        var id = row.TaskId.ToString();
        var properties = new BasicProperties
        {
            Persistent = true,
            MessageId = id,
            ContentType = "text/plain",
            Headers = new Dictionary<string, object?> { [TaskIdHeader] = id, [PriorityHeader] = row.Priority },
        };
        // Mandatory: a message no queue takes comes back as a failure instead of vanishing.
        return channel.BasicPublishAsync(_options.RabbitMqQueue, _options.RabbitMqQueue, mandatory: true, properties, Encoding.UTF8.GetBytes(id), ct).AsTask();
    }

    private async Task RepublishLostSafelyAsync(CancellationToken ct)
    {
        try
        {
            var waiting = (await (await ChannelAsync(ct)).QueueDeclarePassiveAsync(_options.RabbitMqQueue, ct)).MessageCount;
            // With messages waiting, an old queued task is most likely among them: only a much older one counts as lost.
            var count = await RepublishLostAsync(waiting == 0 ? _options.RepublishAfter : _options.RepublishAfter * BacklogFactor, ct);
            if (count > 0)
            {
                TaskLog.Republishing(logger, count, waiting);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Without the broker nothing could be published anyway; the relay loop reports it.
            await CloseChannelAsync();
            _ = ex;
        }
    }

    /// <summary>How much longer a task must wait unclaimed to count as lost while the broker holds a backlog.</summary>
    internal const int BacklogFactor = 10;

    /// <summary>
    /// The broker-loss sweeper: a task that has been due and unclaimed for <paramref name="staleAfter"/> with no outbox
    /// row waiting has no message the broker will deliver soon (the broker lost its queue, dropped the message to the
    /// dead letters, or a consumer dropped it early), so it gets a new outbox row. A task that only waits in a long
    /// backlog gets a duplicate this way, at most a bounded batch per round; consumers ack and drop duplicates.
    /// Queued tasks are found through the claim index (status first); the outbox is small.
    /// </summary>
    internal async Task<int> RepublishLostAsync(TimeSpan staleAfter, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.OpenConnectionAsync(ct);
        var now = clock.UtcNow();
        await using var command = _sql.Command(db, $"""
            INSERT INTO task_outbox ("TaskId", "Priority", "DueAt")
            SELECT t."Id", t."Priority", @now FROM tasks t
            WHERE t."Status" = 'queued' AND t."RunAt" <= @stale
              AND NOT EXISTS (SELECT 1 FROM task_outbox o WHERE o."TaskId" = t."Id")
            LIMIT {BatchSize}
            """, new Dictionary<string, object?> { ["@now"] = now, ["@stale"] = now - staleAfter });
        return await command.ExecuteNonQueryAsync(ct);
    }

    private async Task<IChannel> ChannelAsync(CancellationToken ct)
    {
        if (_channel is { IsOpen: true } open)
        {
            return open;
        }
        await CloseChannelAsync();
        var opened = await connection.GetAsync(ct);
        var channel = await opened.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), ct);
        try
        {
            await connection.DeclareTopologyAsync(channel, ct);
        }
        catch
        {
            await RabbitMqConnection.DisposeQuietlyAsync(channel);
            throw;
        }
        return _channel = channel;
    }

    private async Task CloseChannelAsync()
    {
        if (_channel is not null)
        {
            await RabbitMqConnection.DisposeQuietlyAsync(_channel);
            _channel = null;
        }
    }

    private sealed record Row(long Id, Guid TaskId, int Priority);
}
