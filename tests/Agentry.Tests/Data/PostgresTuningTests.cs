using System.Data.Common;
using Agentry.Data;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Agentry.Tests.Data;

public sealed class PostgresTuningTests
{
    /// <summary>The pool and session settings the audit report prescribes reach the real server.</summary>
    [Fact]
    public async Task Connections_use_the_prescribed_pool_timeouts_and_jit_off()
    {
        await using var database = await PostgresDatabase.CreateAsync();
        await using var app = new AgentryApp(new Dictionary<string, string?>
        {
            ["Agentry:Storage:Provider"] = "postgres",
            ["ConnectionStrings:Agentry"] = database.ConnectionString,
        });

        var pool = new NpgsqlConnectionStringBuilder(app.Services.GetRequiredService<DbDataSource>().ConnectionString);
        Assert.Equal((10, 50, 10, 300), (pool.MinPoolSize, pool.MaxPoolSize, pool.CommandTimeout, pool.ConnectionLifetime));

        await using var scope = app.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var jit = await db.Database.SqlQueryRaw<string>("SELECT current_setting('jit') AS \"Value\"").SingleAsync();
        Assert.Equal("off", jit);
    }
}
