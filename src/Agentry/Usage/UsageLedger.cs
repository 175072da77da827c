using System.Collections.Concurrent;
using System.Threading.Channels;
using Agentry.Data;
using Microsoft.Extensions.Options;
using ZiggyCreatures.Caching.Fusion;

namespace Agentry.Usage;

/// <summary>
/// The usage ledger's writer. A model call hands its record over and goes on; records are written in batches (every
/// <c>FlushInterval</c>, or at once when <c>BatchSize</c> wait), so the hot path pays for a queue write, not a commit.
/// Until a record is written its tokens count in this node's pending totals, so budget checks on this node see it at
/// once. On a graceful stop the queue is drained before the node ends: nothing accepted is lost.
/// </summary>
internal sealed class UsageLedger : BackgroundService
{
    private readonly Channel<UsageRecord> _queue;
    private readonly IServiceScopeFactory _scopes;
    private readonly IFusionCache _cache;
    private readonly UsageOptions _options;
    private readonly ILogger<UsageLedger> _logger;
    private readonly ConcurrentDictionary<string, long> _pendingTokens = new();
    private readonly ConcurrentQueue<TaskCompletionSource> _flushWaiters = new();
    // Wakes the writer before its interval is over: a full batch, a flush asked for, or the node stopping.
    private readonly SemaphoreSlim _wake = new(0);
    private long _pendingRecords;
    private volatile bool _stopping;

    public UsageLedger(IServiceScopeFactory scopes, IFusionCache cache, IOptions<UsageOptions> options, ILogger<UsageLedger> logger)
    {
        (_scopes, _cache, _options, _logger) = (scopes, cache, options.Value, logger);
        _queue = Channel.CreateBounded<UsageRecord>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = true,
        });
    }

    /// <summary>Queues a call's record; waits only when the queue is full. After the ledger stopped, writes it at once.</summary>
    public async ValueTask RecordAsync(UsageRecord record)
    {
        AddPending(record, +1);
        Interlocked.Increment(ref _pendingRecords);
        try
        {
            await _queue.Writer.WriteAsync(record);
        }
        catch (ChannelClosedException)
        {
            // A call that finished while the node was stopping: the drain is over, so it is written on its own.
            await WriteAsync([record], stopping: true);
            return;
        }
        if (_queue.Reader.Count >= _options.BatchSize)
        {
            Wake();
        }
    }

    /// <summary>Tokens of this node's records for <paramref name="scopeKey"/> that are not written yet.</summary>
    public long PendingTokens(string scopeKey) => _pendingTokens.TryGetValue(scopeKey, out var tokens) ? tokens : 0;

    /// <summary>Writes every record queued so far (reports call this, so a node reads its own calls).</summary>
    public async Task FlushAsync(CancellationToken ct)
    {
        if (Interlocked.Read(ref _pendingRecords) == 0)
        {
            return;
        }
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _flushWaiters.Enqueue(waiter);
        Wake();
        if (Interlocked.Read(ref _pendingRecords) == 0)
        {
            ReleaseWaiters();
        }
        await waiter.Task.WaitAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<UsageRecord>(_options.BatchSize);
        // Ends when the queue is completed (the node stops) and empty: the drain is this same loop.
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            if (_queue.Reader.Count < _options.BatchSize && !_stopping && _flushWaiters.IsEmpty)
            {
                await _wake.WaitAsync(_options.FlushInterval, CancellationToken.None);
            }
            var waiters = new List<TaskCompletionSource>();
            while (_flushWaiters.TryDequeue(out var waiter))
            {
                waiters.Add(waiter);
            }
            while (batch.Count < _options.BatchSize && _queue.Reader.TryRead(out var record))
            {
                batch.Add(record);
            }
            await WriteAsync(batch, _stopping);
            // A batch that did not fill took everything queued before these flushes asked; a full one may have left some.
            foreach (var waiter in waiters)
            {
                if (batch.Count < _options.BatchSize)
                {
                    waiter.TrySetResult();
                }
                else
                {
                    _flushWaiters.Enqueue(waiter);
                }
            }
            batch.Clear();
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Take no more records into the queue, then let the loop write what is in it, batch after batch without waiting.
        _stopping = true;
        _queue.Writer.TryComplete();
        Wake();
        await base.StopAsync(cancellationToken);
    }

    private async Task WriteAsync(List<UsageRecord> batch, bool stopping)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var scope = _scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                db.UsageRecords.AddRange(batch);
                await db.SaveChangesAsync(CancellationToken.None);
                break;
            }
            catch (Exception ex) when (!stopping || attempt < 3)
            {
                // The database is away: keep the batch and try again (the queue fills meanwhile and then holds calls back).
                UsageLog.WriteFailed(_logger, batch.Count, ex);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), CancellationToken.None);
            }
            catch (Exception ex)
            {
                UsageLog.Lost(_logger, batch.Count, ex);
                break;
            }
        }
        // The written tokens now count in the database's sums: drop the cached sums first, then the pending ones, so
        // a check in between counts them twice rather than not at all.
        foreach (var key in batch.SelectMany(ScopeKeys).Distinct())
        {
            await _cache.RemoveAsync(TokenBudgets.SpentCacheKey(key), token: CancellationToken.None);
        }
        foreach (var record in batch)
        {
            AddPending(record, -1);
        }
        if (Interlocked.Add(ref _pendingRecords, -batch.Count) == 0)
        {
            ReleaseWaiters();
        }
    }

    private void AddPending(UsageRecord record, int sign)
    {
        if (record.TotalTokens == 0)
        {
            return;
        }
        foreach (var key in ScopeKeys(record))
        {
            _pendingTokens.AddOrUpdate(key, sign * record.TotalTokens, (_, tokens) => tokens + sign * record.TotalTokens);
        }
    }

    /// <summary>The budget scopes a record counts in: its workspace's day, and its API key's day.</summary>
    private static IEnumerable<string> ScopeKeys(UsageRecord record)
    {
        yield return TokenBudgets.ScopeKey(TokenBudgets.WorkspaceScope, record.WorkspaceId, record.Day);
        if (record.PrincipalKind == UsagePrincipals.ApiKey && record.PrincipalId is { } key)
        {
            yield return TokenBudgets.ScopeKey(TokenBudgets.ApiKeyScope, key, record.Day);
        }
    }

    private void ReleaseWaiters()
    {
        while (_flushWaiters.TryDequeue(out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    private void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }
}
