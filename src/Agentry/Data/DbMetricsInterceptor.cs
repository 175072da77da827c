using System.Data.Common;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Agentry.Hosting;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Agentry.Data;

/// <summary>
/// Records <c>db_query_duration_seconds</c> (label query_type) for every command EF Core runs, and
/// counts the connections EF holds open for the <c>active_connections{service="database"}</c> gauge.
/// </summary>
internal sealed class DbMetricsInterceptor : IDbCommandInterceptor, IDbConnectionInterceptor
{
    private static readonly string[] KnownTypes = ["select", "insert", "update", "delete", "with", "pragma", "create", "alter", "drop"];

    private readonly Histogram<double> _duration;
    private long _openConnections;

    public DbMetricsInterceptor(IMeterFactory meters)
    {
        _duration = meters.Create(ApiMetrics.MeterName).CreateHistogram("db_query_duration_seconds", "s", "Database query duration",
            advice: new InstrumentAdvice<double>
            {
                HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
            });
    }

    public long OpenConnections => Volatile.Read(ref _openConnections);

    public DbDataReader ReaderExecuted(DbCommand command, CommandExecutedEventData eventData, DbDataReader result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public ValueTask<DbDataReader> ReaderExecutedAsync(DbCommand command, CommandExecutedEventData eventData, DbDataReader result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public int NonQueryExecuted(DbCommand command, CommandExecutedEventData eventData, int result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public ValueTask<int> NonQueryExecutedAsync(DbCommand command, CommandExecutedEventData eventData, int result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public object? ScalarExecuted(DbCommand command, CommandExecutedEventData eventData, object? result)
    {
        Record(command, eventData.Duration);
        return result;
    }

    public ValueTask<object?> ScalarExecutedAsync(DbCommand command, CommandExecutedEventData eventData, object? result, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return ValueTask.FromResult(result);
    }

    public void CommandFailed(DbCommand command, CommandErrorEventData eventData) => Record(command, eventData.Duration);

    public Task CommandFailedAsync(DbCommand command, CommandErrorEventData eventData, CancellationToken cancellationToken = default)
    {
        Record(command, eventData.Duration);
        return Task.CompletedTask;
    }

    public void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Interlocked.Increment(ref _openConnections);

    public Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _openConnections);
        return Task.CompletedTask;
    }

    public void ConnectionClosed(DbConnection connection, ConnectionEndEventData eventData) => Interlocked.Decrement(ref _openConnections);

    public Task ConnectionClosedAsync(DbConnection connection, ConnectionEndEventData eventData)
    {
        Interlocked.Decrement(ref _openConnections);
        return Task.CompletedTask;
    }

    private void Record(DbCommand command, TimeSpan duration) =>
        _duration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("query_type", QueryType(command.CommandText)));

    /// <summary>The statement's first keyword (select, insert, …), or "other"; never the SQL itself.</summary>
    internal static string QueryType(string sql)
    {
        var span = sql.AsSpan().TrimStart();
        var end = 0;
        while (end < span.Length && end < 8 && char.IsAsciiLetter(span[end]))
        {
            end++;
        }
        var word = span[..end];
        foreach (var known in KnownTypes)
        {
            if (word.Equals(known, StringComparison.OrdinalIgnoreCase))
            {
                return known;
            }
        }
        return "other";
    }
}
