using Agentry.Data;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
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

    /// <summary>Every table, column (type, nullability) and index of a model, one line each.</summary>
    private static List<string> Schema(IModel model) =>
        model.GetRelationalModel().Tables
            .SelectMany(t => t.Columns.Select(c => $"{t.Name}.{c.Name} {c.StoreType} {(c.IsNullable ? "null" : "not null")}")
                .Concat(t.Indexes.Select(i => $"{t.Name} index {i.Name} ({string.Join(",", i.Columns.Select(c => c.Name))}) {(i.IsUnique ? "unique" : "")}")))
            .Order(StringComparer.Ordinal)
            .ToList();

    /// <summary>
    /// The precompiled models (Data/CompiledModels, loaded at run time to save start-up) must describe
    /// the same schema as the model the code builds; regenerate them with `dotnet ef dbcontext optimize`.
    /// </summary>
    [Fact]
    public async Task The_compiled_models_are_current()
    {
        await using var sqlite = AgentryApp.Sqlite();
        await using var database = await PostgresDatabase.CreateAsync();
        await using var postgres = new AgentryApp(Settings.Postgres(database.ConnectionString));

        foreach (var app in new[] { sqlite, postgres })
        {
            await using var scope = app.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            Assert.EndsWith("AppDbContextModel", db.Model.GetType().Name);
            var designTime = db.GetService<IDesignTimeModel>().Model;
            Assert.Equal(Schema(designTime), Schema(db.Model));
        }
    }
}
