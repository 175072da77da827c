using System.ComponentModel;
using System.Diagnostics;
using Agentry.Data;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Agentry.Operations;

/// <summary>
/// PostgreSQL through its own client tools: <c>pg_dump --format=custom</c> and <c>pg_restore --clean --if-exists
/// --no-owner</c> in one transaction. The connection comes from <c>ConnectionStrings:Agentry</c>; its password reaches the
/// tool in the child's <c>PGPASSWORD</c>, never on a command line (which other users of the machine can read).
/// </summary>
internal sealed class PostgresBackup(IOptions<StorageOptions> storage, IOptions<BackupOptions> options)
{
    /// <summary>The first bytes of every custom-format archive.</summary>
    private static readonly byte[] ArchiveMagic = "PGDMP"u8.ToArray();

    public async Task<string> DumpAsync(string destination, CancellationToken ct)
    {
        var tool = Tool(options.Value.PgDumpPath, "pg_dump", nameof(BackupOptions.PgDumpPath));
        var connection = Connection();
        await RunAsync(tool, ["--format=custom", $"--file={destination}", .. Target(connection)], connection, ct);
        return Describe(connection);
    }

    public async Task<string> RestoreAsync(string file, CancellationToken ct)
    {
        var tool = Tool(options.Value.PgRestorePath, "pg_restore", nameof(BackupOptions.PgRestorePath));
        var connection = Connection();
        var head = new byte[ArchiveMagic.Length];
        await using (var archive = File.OpenRead(file))
        {
            if (await archive.ReadAtLeastAsync(head, head.Length, throwOnEndOfStream: false, ct) < head.Length || !head.AsSpan().SequenceEqual(ArchiveMagic))
            {
                throw new OperationException($"{file} is not a pg_dump archive in the custom format (made by 'agentry backup' on PostgreSQL).");
            }
        }
        // The archive's table of contents names every table it holds: Agentry's have a migration history.
        var contents = await RunAsync(tool, ["--list", file], null, ct);
        if (!contents.Contains(" __EFMigrationsHistory ", StringComparison.Ordinal))
        {
            throw new OperationException($"{file} is a PostgreSQL archive but not Agentry's: it has no __EFMigrationsHistory table.");
        }
        await RunAsync(tool, ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error", .. Target(connection), file], connection, ct);
        return Describe(connection);
    }

    private NpgsqlConnectionStringBuilder Connection() => new(storage.Value.ConnectionString);

    private static string Describe(NpgsqlConnectionStringBuilder connection) =>
        $"PostgreSQL database {connection.Database} on {connection.Host ?? "localhost"}:{connection.Port}";

    /// <summary>Where and as whom to connect; never the password. <c>--no-password</c>: fail rather than wait for a prompt.</summary>
    private static string[] Target(NpgsqlConnectionStringBuilder connection) =>
    [
        $"--host={connection.Host ?? "localhost"}",
        $"--port={connection.Port}",
        $"--username={connection.Username ?? Environment.UserName}",
        $"--dbname={connection.Database}",
        "--no-password",
    ];

    /// <summary>The libpq environment for what the connection string says beyond host, port, user and database.</summary>
    private static void SetLibpqEnvironment(ProcessStartInfo start, NpgsqlConnectionStringBuilder connection)
    {
        if (connection.Password is { Length: > 0 } password)
        {
            start.Environment["PGPASSWORD"] = password;
        }
        if (connection.Passfile is { Length: > 0 } passfile)
        {
            start.Environment["PGPASSFILE"] = passfile;
        }
        start.Environment["PGSSLMODE"] = connection.SslMode switch
        {
            SslMode.Disable => "disable",
            SslMode.Allow => "allow",
            SslMode.Require => "require",
            SslMode.VerifyCA => "verify-ca",
            SslMode.VerifyFull => "verify-full",
            _ => "prefer",
        };
        if (connection.RootCertificate is { Length: > 0 } root)
        {
            start.Environment["PGSSLROOTCERT"] = root;
        }
        start.Environment["PGCONNECT_TIMEOUT"] = Math.Max(connection.Timeout, 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["PGAPPNAME"] = "agentry";
    }

    /// <summary>Runs the tool and returns what it printed; a failure ends the verb with the tool's last words.</summary>
    private static async Task<string> RunAsync(string tool, string[] arguments, NpgsqlConnectionStringBuilder? connection, CancellationToken ct)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        if (connection is not null)
        {
            SetLibpqEnvironment(start, connection);
        }
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception ex)
        {
            throw new OperationException($"{tool} could not be run: {ex.Message}.");
        }
        using (process)
        {
            var output = process.StandardOutput.ReadToEndAsync(ct);
            var errors = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            if (process.ExitCode != 0)
            {
                var why = (await errors).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(l => l.Contains("error", StringComparison.OrdinalIgnoreCase))
                    ?? $"exit code {process.ExitCode}";
                throw new OperationException($"{Path.GetFileName(tool)} failed: {why}", 1);
            }
            return await output;
        }
    }

    /// <summary>The configured tool, or the one on PATH; missing, the verb says where to get it.</summary>
    private static string Tool(string? configured, string name, string key)
    {
        if (configured is { Length: > 0 })
        {
            return File.Exists(configured)
                ? configured
                : throw new OperationException($"{BackupOptions.SectionName}:{key} is '{configured}', which does not exist.");
        }
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, name))
            .FirstOrDefault(File.Exists);
        return path ?? throw new OperationException(
            $"{name} was not found on PATH; install the PostgreSQL client tools (the server's major version or newer) or set {BackupOptions.SectionName}:{key}.");
    }
}
