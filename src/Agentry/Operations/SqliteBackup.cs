using Agentry.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Operations;

/// <summary>
/// SQLite through its online backup API: a backup reads one consistent snapshot while nodes keep writing (in WAL mode
/// readers never block the writer), and a restore writes the backup's pages into the database in one transaction of
/// the target, so a restore that fails leaves the database as it was.
/// </summary>
internal sealed class SqliteBackup(IOptions<StorageOptions> storage, IServiceScopeFactory scopes)
{
    private const int NotADatabase = 26; // SQLITE_NOTADB
    private const int Corrupt = 11; // SQLITE_CORRUPT
    private const int Busy = 5; // SQLITE_BUSY

    public async Task<string> BackupAsync(string destination, CancellationToken ct)
    {
        var database = Database();
        if (!File.Exists(database.DataSource))
        {
            throw new OperationException($"There is no database at {database.DataSource} (ConnectionStrings:Agentry) to back up.");
        }
        database.Mode = SqliteOpenMode.ReadWrite; // never create an empty one
        await using var source = new SqliteConnection(database.ToString());
        await source.OpenAsync(ct);
        await using var copy = new SqliteConnection(Unpooled(destination));
        await copy.OpenAsync(ct);
        source.BackupDatabase(copy);
        // One self-contained file: a WAL-mode copy would need -wal and -shm files beside it to be read.
        await using var journal = new SqliteCommand("PRAGMA journal_mode=DELETE;", copy);
        await journal.ExecuteNonQueryAsync(ct);
        return $"SQLite database {database.DataSource}";
    }

    public async Task<string> RestoreAsync(string file, CancellationToken ct)
    {
        var database = Database();
        var directory = Path.GetDirectoryName(Path.GetFullPath(database.DataSource))!;
        Directory.CreateDirectory(directory);
        // Opening the backup itself could change it (a WAL-mode file gets companions), so the checks and the copy read a
        // copy of it, beside the database (the same file system, so it needs no more room than the database will).
        var copy = Path.Combine(directory, $".restore-{Guid.NewGuid():N}.db");
        try
        {
            File.Copy(file, copy);
            await using var source = new SqliteConnection(Unpooled(copy));
            await source.OpenAsync(ct);
            await CheckAsync(source, file, ct);
            database.Pooling = false;
            await using var target = new SqliteConnection(database.ToString());
            await target.OpenAsync(ct);
            source.BackupDatabase(target);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == Busy)
        {
            throw new OperationException($"The database {database.DataSource} is in use; stop every Agentry node before restoring.", 1);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            foreach (var suffix in new[] { "", "-journal", "-wal", "-shm" })
            {
                File.Delete(copy + suffix);
            }
        }
        return $"SQLite database {database.DataSource}";
    }

    /// <summary>Refuses anything but a sound SQLite database holding Agentry's schema, of this version or older.</summary>
    private async Task CheckAsync(SqliteConnection backup, string file, CancellationToken ct)
    {
        List<string> applied;
        try
        {
            if (await ScalarAsync(backup, "PRAGMA quick_check;", ct) is not "ok")
            {
                throw new OperationException($"{file} is a damaged SQLite database (PRAGMA quick_check failed).");
            }
            if (await ScalarAsync(backup, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '__EFMigrationsHistory';", ct) is 0L)
            {
                throw new OperationException($"{file} is a SQLite database but not Agentry's: it has no __EFMigrationsHistory table.");
            }
            applied = [];
            await using var history = new SqliteCommand("SELECT MigrationId FROM __EFMigrationsHistory;", backup);
            await using var reader = await history.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                applied.Add(reader.GetString(0));
            }
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode is NotADatabase or Corrupt)
        {
            throw new OperationException($"{file} is not a SQLite database.");
        }
        await using var scope = scopes.CreateAsyncScope();
        var known = scope.ServiceProvider.GetRequiredService<AppDbContext>().Database.GetMigrations().ToHashSet(StringComparer.Ordinal);
        if (applied.FirstOrDefault(m => !known.Contains(m)) is { } newer)
        {
            throw new OperationException($"{file} comes from a newer Agentry (its migration {newer} is unknown to this version); restore it with that version.");
        }
    }

    private static async Task<object?> ScalarAsync(SqliteConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new SqliteCommand(sql, connection);
        return await command.ExecuteScalarAsync(ct);
    }

    private SqliteConnectionStringBuilder Database()
    {
        var database = new SqliteConnectionStringBuilder(storage.Value.ConnectionString ?? StorageOptions.DefaultSqliteConnection);
        if (database.Mode == SqliteOpenMode.Memory || database.DataSource is "" or ":memory:")
        {
            throw new OperationException("ConnectionStrings:Agentry names an in-memory SQLite database, which cannot be backed up or restored.");
        }
        database.Pooling = false;
        return database;
    }

    private static string Unpooled(string file) =>
        new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString();
}
