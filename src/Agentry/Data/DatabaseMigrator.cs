using Agentry.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Agentry.Data;

/// <summary>
/// Applies the provider's migrations, at start-up (before the server takes requests) unless
/// <c>Agentry:Storage:MigrateOnStart</c> is false, and for the <c>migrate</c> verb.
/// EF Core holds a migration lock, so nodes starting together are safe.
/// </summary>
internal sealed class DatabaseMigrator(IServiceScopeFactory scopes, IOptions<StorageOptions> options, ILogger<DatabaseMigrator> logger)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) =>
        options.Value.MigrateOnStart ? MigrateAsync(cancellationToken) : Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        // MigrateAsync finds the pending migrations itself; asking first would read the history twice.
        var applied = (await db.Database.GetAppliedMigrationsAsync(cancellationToken)).Count();
        await db.Database.MigrateAsync(cancellationToken);
        var pending = db.Database.GetMigrations().Count() - applied;
        if (options.Value.Provider == StorageOptions.Sqlite)
        {
            // WAL lets readers run beside the writer; the setting is stored in the file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
        HostingLog.MigrationsApplied(logger, pending, options.Value.Provider);
    }
}
