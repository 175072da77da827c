using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Agentry.Data;
using Microsoft.Extensions.Options;

namespace Agentry.Operations;

/// <summary>
/// The <c>backup</c> and <c>restore</c> verbs: the configured database to a file and back, by the provider's own means
/// (SQLite's online backup API, PostgreSQL's pg_dump and pg_restore). A backup is written beside its file and renamed
/// into place once complete, so a failed one never leaves half a file under the name; a restore applies the migrations
/// this version has that the backup had not.
/// </summary>
internal sealed class DatabaseBackup(IOptions<StorageOptions> storage, SqliteBackup sqlite, PostgresBackup postgres, DatabaseMigrator migrator)
{
    public async Task<string> BackupAsync(string file, CancellationToken ct)
    {
        var target = Path.GetFullPath(file);
        if (Directory.Exists(target))
        {
            throw new OperationException($"{file} is a directory; name the file to write the backup to.");
        }
        var directory = Path.GetDirectoryName(target)!;
        if (!Directory.Exists(directory))
        {
            throw new OperationException($"The directory of {file} does not exist.");
        }
        var started = Stopwatch.StartNew();
        var temporary = Path.Combine(directory, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.partial");
        try
        {
            var what = IsSqlite ? await sqlite.BackupAsync(temporary, ct) : await postgres.DumpAsync(temporary, ct);
            File.Move(temporary, target, overwrite: true);
            return $"agentry: backed up the {what} to {file} ({Size(new FileInfo(target).Length)}) in {Seconds(started)}";
        }
        catch (Exception ex) when (IsEnvironmental(ex))
        {
            throw new OperationException(ex.Message, 1);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    public async Task<string> RestoreAsync(string file, CancellationToken ct)
    {
        if (Directory.Exists(file) || !File.Exists(file))
        {
            throw new OperationException($"{file}: no such backup file.");
        }
        var started = Stopwatch.StartNew();
        string what;
        try
        {
            what = IsSqlite ? await sqlite.RestoreAsync(Path.GetFullPath(file), ct) : await postgres.RestoreAsync(Path.GetFullPath(file), ct);
            await migrator.MigrateAsync(ct);
        }
        catch (Exception ex) when (IsEnvironmental(ex))
        {
            throw new OperationException(ex.Message, 1);
        }
        return $"agentry: restored the {what} from {file} ({Size(new FileInfo(file).Length)}) in {Seconds(started)}; migrations applied";
    }

    /// <summary>What the machine or the database answered (a full disk, a refused connection): a line, not a stack trace.</summary>
    private static bool IsEnvironmental(Exception ex) => ex is IOException or UnauthorizedAccessException or DbException;

    private bool IsSqlite => storage.Value.Provider == StorageOptions.Sqlite;

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.0} KiB"),
        < 1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.0} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):0.00} GiB"),
    };

    public static string Seconds(Stopwatch watch) => string.Create(CultureInfo.InvariantCulture, $"{watch.Elapsed.TotalSeconds:0.0} s");
}
