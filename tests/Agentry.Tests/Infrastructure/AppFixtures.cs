namespace Agentry.Tests.Infrastructure;

/// <summary>A storage provider under test: one app on its own database, shared by a test class.</summary>
public abstract class StorageFixture : IAsyncLifetime
{
    public AgentryApp App { get; protected set; } = null!;

    public HttpClient Client { get; private set; } = null!;

    public abstract string Provider { get; }

    /// <summary>Settings beyond the provider's own, for a suite that needs them.</summary>
    protected virtual IReadOnlyDictionary<string, string?>? Extra => null;

    /// <summary>Services added to (or replacing) the app's own, for a suite that needs them.</summary>
    protected virtual Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? Services => null;

    /// <summary>Listen on a real loopback port (a real client address, real headers).</summary>
    protected virtual bool Kestrel => false;

    public virtual async ValueTask InitializeAsync() => Client = await App.AdminClientAsync();

    public virtual async ValueTask DisposeAsync() => await App.DisposeAsync();
}

public class SqliteFixture : StorageFixture
{
    public override string Provider => "sqlite";

    public override ValueTask InitializeAsync()
    {
        App = AgentryApp.Sqlite(Extra, Services, Kestrel);
        return base.InitializeAsync();
    }
}

public class PostgresFixture : StorageFixture
{
    private PostgresDatabase _database = null!;

    public override string Provider => "postgres";

    public override async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync();
        App = new AgentryApp(Settings.Postgres(_database.ConnectionString).With(Extra), Services, Kestrel);
        await base.InitializeAsync();
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await _database.DisposeAsync();
    }
}
