using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;
using Npgsql;

namespace Agentry.Tests.Operations;

/// <summary>
/// The <c>backup</c> and <c>restore</c> verbs on the test PostgreSQL server (PostgreSQL 15, with the client tools of its
/// installation), run as the shipped program. A missing server fails these tests (see <see cref="TestServers"/>).
/// </summary>
public sealed class PostgresBackupTests
{
    private static string Tool(string name) => Path.Combine(TestServers.PostgresBinaries, name);

    [Fact]
    public async Task A_backup_taken_while_the_node_writes_restores_what_it_held_and_nothing_later()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        var directory = TempFiles.Directory();
        var settings = Settings.Postgres(database.ConnectionString).With(KnowledgeSettings.For(Path.Combine(directory, "vectors")));
        var file = Path.Combine(directory, "agentry.dump");

        // pg_dump named by the setting; pg_restore found on PATH.
        await BackupRoundTrip.RunAsync(settings, file,
            backupEnvironment: new Dictionary<string, string> { ["Agentry__Backup__PgDumpPath"] = Tool("pg_dump") },
            restoreEnvironment: new Dictionary<string, string> { ["PATH"] = TestServers.PostgresBinaries + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH") });

        Assert.Equal("PGDMP"u8.ToArray(), (await File.ReadAllBytesAsync(file))[..5]);
    }

    [Fact]
    public async Task The_password_reaches_pg_dump_but_no_output()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        Assert.Equal(0, (await Verb.RunAsync(Settings.Postgres(database.ConnectionString), "migrate")).ExitCode);
        // A role of the test's own, whose password appears nowhere else, that may read the application's tables.
        var role = $"backup_{Guid.NewGuid():N}"[..20];
        var password = $"pw-{Guid.NewGuid():N}";
        await AdminAsync($"CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT {new NpgsqlConnectionStringBuilder(database.ConnectionString).Username} TO {role};");
        try
        {
            var connection = new NpgsqlConnectionStringBuilder(database.ConnectionString) { Username = role, Password = password }.ConnectionString;
            var file = Path.Combine(TempFiles.Directory(), "agentry.dump");
            var dump = new Dictionary<string, string> { ["Agentry__Backup__PgDumpPath"] = Tool("pg_dump") };

            var backup = (await Verb.RunAsync(Settings.Postgres(connection), dump, "backup", file)).Exited(0);

            Assert.DoesNotContain(password, backup.Everything);
            Assert.Contains($"PostgreSQL database {database.Name}", Assert.Single(backup.Said));

            // A wrong password is pg_dump's own error, in one line, without the password.
            var wrong = new NpgsqlConnectionStringBuilder(connection) { Password = password + "-wrong" }.ConnectionString;
            var failed = await Verb.RunAsync(Settings.Postgres(wrong), dump, "backup", file + ".2");
            Assert.Equal(1, failed.ExitCode);
            var line = Assert.Single(failed.Stderr, l => l.Length > 0);
            Assert.StartsWith("agentry: backup: pg_dump failed:", line);
            Assert.Contains("password authentication failed", line);
            Assert.DoesNotContain(password, failed.Everything);
            Assert.False(File.Exists(file + ".2"));
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await AdminAsync($"DROP OWNED BY {role}; DROP ROLE {role};", database.Name);
        }
    }

    private static async Task AdminAsync(string sql, string? database = null)
    {
        var admin = new NpgsqlConnectionStringBuilder(TestServers.PostgresAdmin);
        admin.Database = database ?? admin.Database;
        await using var connection = new NpgsqlConnection(admin.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task A_missing_pg_dump_is_refused_naming_the_setting()
    {
        var settings = Settings.Postgres(TestServers.Postgres);
        var missing = Path.Combine(TempFiles.Directory(), "pg_dump");

        var line = (await Verb.RunAsync(settings, new Dictionary<string, string> { ["Agentry__Backup__PgDumpPath"] = missing }, "backup", missing + ".dump")).Refused();
        Assert.Contains("Agentry:Backup:PgDumpPath", line);

        // Nothing on PATH either: the line says what to install and which setting names it.
        var none = (await Verb.RunAsync(settings, new Dictionary<string, string> { ["PATH"] = TempFiles.Directory() }, "backup", missing + ".dump")).Refused();
        Assert.Contains("pg_dump was not found on PATH", none);
        Assert.Contains("Agentry:Backup:PgDumpPath", none);
    }

    [Fact]
    public async Task Restore_refuses_a_file_that_is_not_a_pg_dump_archive()
    {
        var file = Path.Combine(TempFiles.Directory(), "notes.dump");
        await File.WriteAllTextAsync(file, "These are notes, not an archive.");

        var line = (await Verb.RunAsync(Settings.Postgres(TestServers.Postgres), new Dictionary<string, string> { ["Agentry__Backup__PgRestorePath"] = Tool("pg_restore") }, "restore", file)).Refused();

        Assert.Contains("not a pg_dump archive", line);
    }
}
