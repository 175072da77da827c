using System.Data.Common;
using System.Text.Json;
using Agentry.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Agentry.Tasks;

/// <summary>
/// The only place where the two databases differ for the queue: how a claim skips rows other workers
/// hold, how a set of ids is passed, and how a change and its events become one atomic write. Every
/// statement is written once; this supplies the dialect.
/// </summary>
internal sealed class TaskSql(bool postgres)
{
    public bool Postgres { get; } = postgres;

    /// <summary>Appended to a claim's inner select: PostgreSQL skips rows other workers hold; SQLite writes one at a time anyway.</summary>
    public string SkipLocked => Postgres ? " FOR UPDATE SKIP LOCKED" : "";

    /// <summary>A predicate that <paramref name="column"/> is one of the ids in parameter <paramref name="parameter"/>.</summary>
    public string InIds(string column, string parameter) =>
        Postgres ? $"{column} = ANY({parameter})" : $"{column} IN (SELECT value FROM json_each({parameter}))";

    /// <summary>A JSON object built in SQL from integer columns and constants.</summary>
    public string Json(params (string Key, string Expression)[] fields)
    {
        var args = string.Join(", ", fields.Select(f => $"'{f.Key}', {f.Expression}"));
        return Postgres ? $"json_build_object({args})::text" : $"json_object({args})";
    }

    public object Ids(IEnumerable<Guid> ids) =>
        Postgres ? ids.ToArray() : JsonSerializer.Serialize(ids.Select(id => id.ToString().ToUpperInvariant()));

    /// <summary>
    /// Adds a parameter. SQLite keeps Guids as upper-case text and times as text (as EF Core writes
    /// them), so raw parameters must be bound the same way to compare equal.
    /// </summary>
    public void Add(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value switch
        {
            null => DBNull.Value,
            Guid g when !Postgres => g.ToString().ToUpperInvariant(),
            DateTime d when !Postgres => d.ToString("yyyy-MM-dd HH:mm:ss.FFFFFFF", System.Globalization.CultureInfo.InvariantCulture),
            _ => value,
        };
        if (!Postgres && value is Guid or DateTime)
        {
            ((SqliteParameter)parameter).SqliteType = SqliteType.Text;
        }
        command.Parameters.Add(parameter);
    }

    public DbCommand Command(AppDbContext db, string sql, IReadOnlyDictionary<string, object?> parameters)
    {
        var command = db.Database.GetDbConnection().CreateCommand();
        command.CommandText = sql;
        command.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        foreach (var (name, value) in parameters)
        {
            Add(command, name, value);
        }
        return command;
    }

    /// <summary>
    /// Updates the tasks that match <paramref name="where"/>, appends <paramref name="events"/> to each
    /// (taking the next sequence numbers), optionally puts each on the outbox, and reads the changed rows,
    /// all as one atomic write. <paramref name="set"/> must not touch <c>LastEventSeq</c>; <paramref name="returning"/>
    /// starts with <c>"Id"</c>.
    /// </summary>
    public async Task<List<T>> TransitionAsync<T>(
        AppDbContext db, string set, string where, IReadOnlyList<EventSpec> events, bool outbox,
        string returning, Func<DbDataReader, T> read, IReadOnlyDictionary<string, object?> parameters, CancellationToken ct)
    {
        var update = $"""UPDATE tasks SET {set}, "LastEventSeq" = "LastEventSeq" + {events.Count} WHERE {where}""";
        var inserts = events.Select((e, i) => $"""
            SELECT "Id", "LastEventSeq" - {events.Count - 1 - i}, "WorkspaceId", '{e.Type}', @at, {e.Data} FROM 
            """ + "{0}");
        const string eventColumns = """INSERT INTO task_events ("TaskId", "Seq", "WorkspaceId", "Type", "At", "Data") """;
        const string outboxInsert = """INSERT INTO task_outbox ("TaskId", "Priority", "DueAt") SELECT "Id", "Priority", "RunAt" FROM {0}""";
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            if (Postgres)
            {
                // One statement: data-modifying CTEs see the updated rows, and the whole is atomic.
                var sql = $"WITH u AS ({update} RETURNING *)"
                    + (events.Count > 0 ? $", e AS ({eventColumns}{string.Join(" UNION ALL ", inserts.Select(s => string.Format(s, "u")))})" : "")
                    + (outbox ? $", o AS ({string.Format(outboxInsert, "u")})" : "")
                    + $" SELECT {returning} FROM u";
                return await ReadAsync(Command(db, sql, parameters), read, ct);
            }
            var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
            try
            {
                var rows = await ReadAsync(Command(db, $"{update} RETURNING {returning}", parameters), r => (Id: r.GetGuid(0), Row: read(r)), ct);
                if (rows.Count > 0)
                {
                    var withIds = new Dictionary<string, object?>(parameters) { ["@changed"] = Ids(rows.Select(r => r.Id)) };
                    var changed = $"(SELECT * FROM tasks WHERE {InIds("\"Id\"", "@changed")})";
                    if (events.Count > 0)
                    {
                        await Command(db, eventColumns + string.Join(" UNION ALL ", inserts.Select(s => string.Format(s, changed))), withIds).ExecuteNonQueryAsync(ct);
                    }
                    if (outbox)
                    {
                        await Command(db, string.Format(outboxInsert, changed), withIds).ExecuteNonQueryAsync(ct);
                    }
                }
                if (own is not null)
                {
                    await own.CommitAsync(ct);
                }
                return rows.Select(r => r.Row).ToList();
            }
            finally
            {
                if (own is not null)
                {
                    await own.DisposeAsync();
                }
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    public static async Task<List<T>> ReadAsync<T>(DbCommand command, Func<DbDataReader, T> read, CancellationToken ct)
    {
        await using (command)
        {
            await using var reader = await command.ExecuteReaderAsync(ct);
            var rows = new List<T>();
            while (await reader.ReadAsync(ct))
            {
                rows.Add(read(reader));
            }
            return rows;
        }
    }
}

/// <summary>An event a transition appends: its type and its data as an SQL expression over the task's columns or parameters.</summary>
internal record EventSpec(string Type, string Data = "NULL");
