using System.Net;
using System.Net.Sockets;

namespace Agentry.Tests.Infrastructure;

/// <summary>
/// A RabbitMQ node of the test's own (its own name, ports and data directory, on loopback), which the test
/// may stop and start again; messages in durable queues survive that, as on a real restart.
/// </summary>
public sealed class RabbitMqNode : IAsyncDisposable
{
    private const string User = "rabbitmq";
    private readonly string _directory = TempFiles.Directory();

    public int Port { get; } = RedisProcess.FreePort();

    public int DistributionPort { get; } = RedisProcess.FreePort();

    public string Name => $"agentry-test-{Port}@localhost";

    public string Uri => $"amqp://agentry:agentry-test@127.0.0.1:{Port}/";

    public async Task StartAsync()
    {
        if (!File.Exists(Path.Combine(_directory, "rabbitmq.conf")))
        {
            Directory.CreateDirectory(Path.Combine(_directory, "mnesia"));
            Directory.CreateDirectory(Path.Combine(_directory, "log"));
            await File.WriteAllTextAsync(Path.Combine(_directory, "enabled_plugins"), "[].");
            await File.WriteAllTextAsync(Path.Combine(_directory, "rabbitmq.conf"), """
                default_user = agentry
                default_pass = agentry-test
                default_vhost = /
                default_permissions.configure = .*
                default_permissions.read = .*
                default_permissions.write = .*
                """);
            await ServerCommand.OwnAsync(User, _directory);
        }
        var (code, output) = await CtlAsync("rabbitmq-server", "-detached");
        Assert.True(code == 0, $"rabbitmq-server did not start: {output}");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            // await_startup fails at once until the node answers, so it is polled.
            if (await AcceptsAsync(Port) && (await CtlAsync("rabbitmqctl", "-n", Name, "-q", "await_startup", "--timeout", "5")).ExitCode == 0)
            {
                return;
            }
            await Task.Delay(250);
        }
        Assert.Fail($"RabbitMQ node {Name} did not start on port {Port}; logs under {_directory}/log");
    }

    public async Task StopAsync()
    {
        if (!await AcceptsAsync(Port) && !await AcceptsAsync(DistributionPort))
        {
            return;
        }
        await CtlAsync("rabbitmqctl", "-n", Name, "-q", "stop");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline && (await AcceptsAsync(Port) || await AcceptsAsync(DistributionPort)))
        {
            await Task.Delay(100);
        }
    }

    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAsync();
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
            // A file still held by a stopping node; the temp directory is thrown away anyway.
        }
    }

    private Task<(int ExitCode, string Output)> CtlAsync(string tool, params string[] args) =>
        ServerCommand.RunAsync(User, _directory, Path.Combine(TestServers.RabbitMqBinaries, tool), args, new Dictionary<string, string>
        {
            ["RABBITMQ_NODENAME"] = Name,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = Port.ToString(),
            ["RABBITMQ_DIST_PORT"] = DistributionPort.ToString(),
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(_directory, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(_directory, "log"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(_directory, "enabled_plugins"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(_directory, "rabbitmq.conf"),
            ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
            ["RABBITMQ_CTL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
        });

    private static async Task<bool> AcceptsAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
