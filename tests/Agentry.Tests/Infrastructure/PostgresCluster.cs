namespace Agentry.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL cluster of the test's own (initdb in a temporary directory, loopback only, fsync off),
/// which the test may stop and start again, unlike the shared test server.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private const string User = "postgres";
    private readonly string _directory = TempFiles.Directory();

    public int Port { get; } = RedisProcess.FreePort();

    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres";

    private string Data => Path.Combine(_directory, "data");

    public static async Task<PostgresCluster> StartAsync()
    {
        var cluster = new PostgresCluster();
        Directory.CreateDirectory(cluster.Data);
        Directory.CreateDirectory(Path.Combine(cluster._directory, "socket"));
        await ServerCommand.OwnAsync(User, cluster._directory);
        var (code, output) = await cluster.RunAsync("initdb", "-D", cluster.Data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8");
        Assert.True(code == 0, $"initdb failed: {output}");
        await cluster.StartAgainAsync();
        return cluster;
    }

    public async Task StartAgainAsync()
    {
        var options = $"-p {Port} -k {Path.Combine(_directory, "socket")} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200";
        var (code, output) = await RunAsync("pg_ctl", "-D", Data, "-o", options, "-l", Path.Combine(_directory, "postgres.log"), "-w", "-t", "60", "start");
        Assert.True(code == 0, $"pg_ctl start failed: {output}");
    }

    public async Task StopAsync()
    {
        await RunAsync("pg_ctl", "-D", Data, "-m", "fast", "-w", "-t", "60", "stop");
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // The temp directory is thrown away anyway.
        }
    }

    private Task<(int ExitCode, string Output)> RunAsync(string tool, params string[] args) =>
        ServerCommand.RunAsync(User, _directory, Path.Combine(TestServers.PostgresBinaries, tool), args);
}
