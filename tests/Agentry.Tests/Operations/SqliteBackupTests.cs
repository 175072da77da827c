using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;
using Microsoft.Data.Sqlite;

namespace Agentry.Tests.Operations;

/// <summary>The <c>backup</c> and <c>restore</c> verbs on SQLite, run as the shipped program.</summary>
public sealed class SqliteBackupTests
{
    [Fact]
    public async Task A_backup_taken_while_the_node_writes_restores_what_it_held_and_nothing_later()
    {
        var directory = TempFiles.Directory();
        var settings = KnowledgeSettings.SqliteNode(directory);
        var file = Path.Combine(Directory.CreateDirectory(Path.Combine(directory, "backups")).FullName, "agentry.backup");

        await BackupRoundTrip.RunAsync(settings, file);

        // The backup is one self-contained, sound database file.
        await using var backup = new SqliteConnection($"Data Source={file};Mode=ReadOnly;Pooling=false");
        await backup.OpenAsync();
        await using var check = new SqliteCommand("PRAGMA integrity_check", backup);
        Assert.Equal("ok", await check.ExecuteScalarAsync());
        await using var journal = new SqliteCommand("PRAGMA journal_mode", backup);
        Assert.Equal("delete", await journal.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData("missing", "no such backup file")]
    [InlineData("text", "is not a SQLite database")]
    [InlineData("foreign", "has no __EFMigrationsHistory table")]
    public async Task Restore_refuses_a_file_that_is_not_an_Agentry_database_and_leaves_the_database_alone(string kind, string problem)
    {
        var directory = TempFiles.Directory();
        var database = Path.Combine(directory, "agentry.db");
        var file = Path.Combine(directory, $"{kind}.backup");
        switch (kind)
        {
            case "text":
                await File.WriteAllTextAsync(file, string.Concat(Enumerable.Repeat("These are notes, not a database.\n", 100)));
                break;
            case "foreign":
                await using (var other = new SqliteConnection($"Data Source={file};Pooling=false"))
                {
                    await other.OpenAsync();
                    await using var create = new SqliteCommand("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('hello');", other);
                    await create.ExecuteNonQueryAsync();
                }
                break;
        }

        var line = (await Verb.RunAsync(Settings.Sqlite(database), "restore", file)).Refused();

        Assert.Contains(problem, line);
        Assert.Contains(file, line);
        Assert.False(File.Exists(database), "a refused restore made a database");
        Assert.Empty(Directory.GetFiles(directory, ".restore-*"));
    }

    [Theory]
    [InlineData("backup")]
    [InlineData("restore")]
    public async Task A_backup_verb_without_its_file_is_refused(string verb)
    {
        var line = (await Verb.RunAsync(Settings.Sqlite(TempFiles.Database()), verb)).Refused();

        Assert.Contains($"agentry {verb} FILE", line);
    }

    [Fact]
    public async Task Backing_up_a_database_that_does_not_exist_is_refused_without_making_one()
    {
        var database = TempFiles.Database();
        var file = Path.Combine(Path.GetDirectoryName(database)!, "agentry.backup");

        var line = (await Verb.RunAsync(Settings.Sqlite(database), "backup", file)).Refused();

        Assert.Contains("no database", line);
        Assert.False(File.Exists(database));
        Assert.False(File.Exists(file));
    }
}
