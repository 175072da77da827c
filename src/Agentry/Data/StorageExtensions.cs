using System.Data.Common;
using Agentry.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Agentry.Data;

public static class StorageExtensions
{
    /// <summary>
    /// The database: SQLite (embedded default) or PostgreSQL, behind one pooled <see cref="AppDbContext"/>.
    /// </summary>
    public static IHostApplicationBuilder AddStorage(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<StorageOptions>()
            .BindConfiguration(StorageOptions.SectionName)
            .Configure<IConfiguration>((o, config) => o.ConnectionString ??= config.GetConnectionString("Agentry"))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>();
        services.AddSingleton<DbMetricsInterceptor>();
        services.AddSingleton(sp => ConnectionGaugeFor(sp.GetRequiredService<DbMetricsInterceptor>()));

        // The one switch that picks the storage provider. An unknown value registers nothing here and
        // is reported by the options validator at start-up, naming the key and the allowed values.
        switch (builder.Configuration[$"{StorageOptions.SectionName}:Provider"] ?? StorageOptions.Sqlite)
        {
            case StorageOptions.Sqlite:
                services.AddDbContextPool<AppDbContext, SqliteAppDbContext>((sp, db) => db
                    .UseSqlite(SqliteConnectionString(sp.GetRequiredService<IOptions<StorageOptions>>().Value))
                    .ConfigureAgentryDefaults(sp));
                break;
            case StorageOptions.Postgres:
                services.AddSingleton<DbDataSource>(sp => PostgresDataSource(sp.GetRequiredService<IOptions<StorageOptions>>().Value));
                services.AddDbContextPool<AppDbContext, PostgresAppDbContext>((sp, db) => db
                    .UseNpgsql((NpgsqlDataSource)sp.GetRequiredService<DbDataSource>())
                    .ConfigureAgentryDefaults(sp));
                break;
        }

        services.AddHealthChecks().AddDbContextCheck<AppDbContext>(
            "database",
            tags: [HealthExtensions.ReadyTag],
            customTestQuery: static (db, ct) => db.Database.SqlQueryRaw<int>("SELECT 1 AS \"Value\"").AnyAsync(ct));
        services.AddSingleton<DatabaseMigrator>();
        services.AddHostedService(sp => sp.GetRequiredService<DatabaseMigrator>());
        return builder;
    }

    /// <summary>What every provider shares: metrics, and no model diff at start-up.</summary>
    private static DbContextOptionsBuilder ConfigureAgentryDefaults(this DbContextOptionsBuilder db, IServiceProvider services) => db
        .AddInterceptors(services.GetRequiredService<DbMetricsInterceptor>())
        // Migrating compares the model with the last snapshot to warn of a forgotten migration, which
        // costs hundreds of milliseconds at every start; MigrationTests makes that check at build time.
        .ConfigureWarnings(w => w.Ignore(RelationalEventId.PendingModelChangesWarning));

    private static ConnectionGauge ConnectionGaugeFor(DbMetricsInterceptor interceptor) =>
        new("database", () => interceptor.OpenConnections);

    private static string SqliteConnectionString(StorageOptions options)
    {
        var connection = new SqliteConnectionStringBuilder(options.ConnectionString ?? StorageOptions.DefaultSqliteConnection);
        var directory = Path.GetDirectoryName(Path.GetFullPath(connection.DataSource));
        if (connection.Mode != SqliteOpenMode.Memory && directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        return connection.ToString();
    }

    /// <summary>Pool bounds, command timeout, bounded connection lifetime and JIT off, as the audit report asks; prepared statements.</summary>
    private static NpgsqlDataSource PostgresDataSource(StorageOptions options)
    {
        var connection = new NpgsqlConnectionStringBuilder(options.ConnectionString)
        {
            MinPoolSize = options.MinPoolSize,
            MaxPoolSize = options.MaxPoolSize,
            CommandTimeout = options.CommandTimeoutSeconds,
            ConnectionLifetime = options.ConnectionLifetimeSeconds,
        };
        // JIT compilation makes short OLTP queries slower and their latency erratic.
        connection.Options = string.IsNullOrEmpty(connection.Options) ? "-c jit=off" : connection.Options + " -c jit=off";
        // The same few statements run all the time: prepared once per connection, the server skips parsing and
        // planning them (most of its work for a key lookup or a one-row insert). Agentry keeps no session state
        // (no session settings, advisory locks, LISTEN or temporary tables), so a connection going back to the
        // pool needs no DISCARD ALL, which would also drop those prepared statements. A connection string can
        // still set either.
        if (!HasKey(options.ConnectionString, "Max Auto Prepare"))
        {
            connection.MaxAutoPrepare = 64;
            connection.AutoPrepareMinUsages = 2;
        }
        if (!HasKey(options.ConnectionString, "No Reset On Close"))
        {
            connection.NoResetOnClose = true;
        }
        return new NpgsqlDataSourceBuilder(connection.ConnectionString).Build();
    }

    /// <summary>Whether the connection string sets <paramref name="key"/> itself (in any spelling Npgsql accepts: spaces are optional).</summary>
    private static bool HasKey(string? connectionString, string key) =>
        new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(k => string.Equals(k.Replace(" ", ""), key.Replace(" ", ""), StringComparison.OrdinalIgnoreCase));
}
