namespace Agentry.Operations;

public static class OperationsExtensions
{
    /// <summary>The operator's verbs (<c>backup</c>, <c>restore</c>, <c>reindex</c>): nothing runs unless a verb asks.</summary>
    public static IHostApplicationBuilder AddOperations(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<BackupOptions>().BindConfiguration(BackupOptions.SectionName);
        builder.Services.AddSingleton<SqliteBackup>();
        builder.Services.AddSingleton<PostgresBackup>();
        builder.Services.AddSingleton<DatabaseBackup>();
        builder.Services.AddSingleton<VectorReindex>();
        return builder;
    }
}

/// <summary>The PostgreSQL client tools the backup verbs run. Section <c>Agentry:Backup</c>.</summary>
public sealed class BackupOptions
{
    public const string SectionName = "Agentry:Backup";

    /// <summary><c>pg_dump</c>'s path; unset: found on PATH. Its major version must be the server's or newer.</summary>
    public string? PgDumpPath { get; set; }

    /// <summary><c>pg_restore</c>'s path; unset: found on PATH.</summary>
    public string? PgRestorePath { get; set; }
}

/// <summary>
/// An operation refused or failed for a reason the operator can act on: the verb prints the message as one line and
/// exits with <see cref="ExitCode"/> (2: bad input, a missing tool or file; 1: the work itself failed).
/// </summary>
public sealed class OperationException(string message, int exitCode = 2) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
