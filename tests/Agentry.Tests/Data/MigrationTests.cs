using Agentry.Data;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Data;

public sealed class MigrationTests
{
    /// <summary>A model change without a migration for each provider would fail here, not in production.</summary>
    [Fact]
    public async Task Both_migration_sets_match_the_model_and_apply()
    {
        await using var sqlite = AgentryApp.Sqlite();
        await using var database = await PostgresDatabase.CreateAsync();
        await using var postgres = new AgentryApp(Settings.Postgres(database.ConnectionString));

        foreach (var app in new[] { sqlite, postgres })
        {
            await using var scope = app.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            Assert.False(db.Database.HasPendingModelChanges(), $"{db.GetType().Name}: the model has changes with no migration");
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            Assert.NotEmpty(await db.Database.GetAppliedMigrationsAsync());
        }
    }
}
