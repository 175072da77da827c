using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// One Agentry node hosted in the test process, configured by plain settings (the same keys an
/// operator uses). With <paramref name="kestrel"/> it listens on a real loopback port, so Kestrel's
/// own limits and connection handling take part.
/// </summary>
public sealed partial class AgentryApp(
    IReadOnlyDictionary<string, string?> settings,
    Action<IServiceCollection>? services = null,
    bool kestrel = false) : WebApplicationFactory<Program>
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Production");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        builder.UseSetting("Agentry:Telemetry:JsonLogs", "false");
        builder.UseSetting("Agentry:Bootstrap:AdminEmail", AdminEmail);
        builder.UseSetting("Agentry:Bootstrap:AdminPassword", AdminPassword);
        // Tests sign in and call far faster than people do; the limiter stays in the pipeline with room
        // to spare, and a test of the limits sets its own.
        foreach (var (key, value) in GenerousRateLimits)
        {
            builder.UseSetting(key, value);
        }
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }
        if (services is not null)
        {
            builder.ConfigureServices(services);
        }
    }

    public static readonly IReadOnlyDictionary<string, string> GenerousRateLimits = new[] { "Api", "Workspace", "SignIn" }
        .SelectMany(policy => new[] { ($"Agentry:RateLimits:{policy}:PermitsPerPeriod", "1000000"), ($"Agentry:RateLimits:{policy}:Burst", "1000000") })
        .ToDictionary(setting => setting.Item1, setting => setting.Item2);
    private readonly Lock _startLock = new();
    private bool _kestrelStarted;

    /// <summary>
    /// Stops and disposes the node. A known race of the test factory with a minimal-hosting program
    /// (dotnet/aspnetcore#40271): stopping the host also ends the program's own Run, which disposes the host while the
    /// factory is still disposing it; slow stops (stdio tool servers being ended) widen the window. The node is down
    /// either way, so the second disposal's complaint is not a failure.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        try
        {
            await base.DisposeAsync();
        }
        catch (ObjectDisposedException)
        {
            // Already disposed by the program's Run: see above.
        }
    }

    public const string AdminEmail = "admin@agentry.test";
    public const string AdminPassword = "test-admin-password";

    /// <summary>An app on a fresh SQLite file of its own.</summary>
    public static AgentryApp Sqlite(IReadOnlyDictionary<string, string?>? extra = null, Action<IServiceCollection>? services = null, bool kestrel = false) =>
        new(Settings.Sqlite(TempFiles.Database()).With(extra), services, kestrel);

    /// <summary>A client whose base address is the app (Kestrel port or in-memory server).</summary>
    public HttpClient Client()
    {
        if (!kestrel)
        {
            return CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        }
        lock (_startLock)
        {
            // Once per app: the factory refuses UseKestrel after its server has started.
            if (!_kestrelStarted)
            {
                UseKestrel(0);
                StartServer();
                _kestrelStarted = true;
            }
        }
        return new HttpClient { BaseAddress = BaseUri };
    }

    /// <summary>The loopback address Kestrel listens on (only with kestrel: true).</summary>
    public Uri BaseUri
    {
        get
        {
            var addresses = Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
            return new Uri(addresses.First().Replace("[::]", "127.0.0.1").Replace("localhost", "127.0.0.1"));
        }
    }
}

public static class Settings
{
    public static Dictionary<string, string?> Sqlite(string file) => new()
    {
        ["Agentry:Storage:Provider"] = "sqlite",
        ["ConnectionStrings:Agentry"] = $"Data Source={file}",
    };

    public static Dictionary<string, string?> Postgres(string connectionString) => new()
    {
        ["Agentry:Storage:Provider"] = "postgres",
        ["ConnectionStrings:Agentry"] = connectionString,
        // Several apps share one test server: keep each pool small.
        ["Agentry:Storage:MinPoolSize"] = "0",
        ["Agentry:Storage:MaxPoolSize"] = "10",
    };

    /// <summary>A node of a cluster: PostgreSQL and Redis shared with the other nodes, under the database's name.</summary>
    public static Dictionary<string, string?> Cluster(PostgresDatabase database) => Postgres(database.ConnectionString).With(new Dictionary<string, string?>
    {
        ["Agentry:Cache:Redis"] = TestServers.Redis,
        ["Agentry:Cache:InstanceName"] = database.Name,
    });

    public static Dictionary<string, string?> With(this Dictionary<string, string?> settings, IReadOnlyDictionary<string, string?>? extra)
    {
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        return settings;
    }
}

public static class TempFiles
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "agentry-tests");

    public static string Database() => Path.Combine(Directory(), "agentry.db");

    public static string Directory()
    {
        var path = Path.Combine(Root, Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(path);
        return path;
    }
}
