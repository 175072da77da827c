using Agentry.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using RabbitMQ.Client;

namespace Agentry.Tasks;

/// <summary>
/// This node's one connection to the broker, opened on first use and opened again after it is lost.
/// The client's own recovery is off on purpose: the relay and the consumer each run a reconnect loop
/// over fresh channels, so a delivery tag can never outlive the channel it came from.
/// </summary>
internal sealed class RabbitMqConnection(IOptions<TaskOptions> options) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private IConnection? _connection;

    /// <summary>How long a relay or consumer waits before it tries a lost broker again.</summary>
    public static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);

    public async Task<IConnection> GetAsync(CancellationToken ct)
    {
        if (_connection is { IsOpen: true } open)
        {
            return open;
        }
        await _gate.WaitAsync(ct);
        try
        {
            if (_connection is { IsOpen: true } opened)
            {
                return opened;
            }
            if (_connection is not null)
            {
                await DisposeQuietlyAsync(_connection);
                _connection = null;
            }
            var factory = new ConnectionFactory
            {
                Uri = new Uri(options.Value.RabbitMqUri!),
                ClientProvidedName = "agentry",
                AutomaticRecoveryEnabled = false,
                TopologyRecoveryEnabled = false,
                RequestedConnectionTimeout = TimeSpan.FromSeconds(5),
                RequestedHeartbeat = TimeSpan.FromSeconds(15),
            };
            _connection = await factory.CreateConnectionAsync(ct);
            return _connection;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Declares the exchange, the quorum queue and its dead letters; idempotent, so every channel that
    /// publishes or consumes declares them first and a broker that lost them gets them back.
    /// </summary>
    public async Task DeclareTopologyAsync(IChannel channel, CancellationToken ct)
    {
        var queue = options.Value.RabbitMqQueue;
        var deadLetters = $"{queue}.dlx";
        await channel.ExchangeDeclareAsync(deadLetters, ExchangeType.Fanout, durable: true, autoDelete: false, cancellationToken: ct);
        // Only for inspection (the database is the truth and the sweeper republishes), so it is capped.
        await channel.QueueDeclareAsync($"{queue}.dead", durable: true, exclusive: false, autoDelete: false,
            new Dictionary<string, object?> { ["x-max-length"] = 100_000 }, cancellationToken: ct);
        await channel.QueueBindAsync($"{queue}.dead", deadLetters, "", cancellationToken: ct);
        await channel.ExchangeDeclareAsync(queue, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: ct);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, new Dictionary<string, object?>
        {
            ["x-queue-type"] = "quorum",
            // A message that keeps coming back (consumers crashing on it) leaves for the dead letters.
            ["x-delivery-limit"] = DeliveryLimit,
            ["x-dead-letter-exchange"] = deadLetters,
        }, cancellationToken: ct);
        await channel.QueueBindAsync(queue, queue, queue, cancellationToken: ct);
    }

    /// <summary>Redeliveries before the broker dead-letters a message. Fixed: a queue's arguments cannot change once declared.</summary>
    public const int DeliveryLimit = 20;

    public static async Task DisposeQuietlyAsync(IAsyncDisposable disposable)
    {
        try
        {
            await disposable.DisposeAsync();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Already broken; nothing to give back.
            _ = ex;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await DisposeQuietlyAsync(_connection);
        }
        _gate.Dispose();
    }
}

/// <summary>
/// Readiness of the broker. A node without it still accepts tasks (they wait on the outbox), so it is
/// reported degraded, not unhealthy.
/// </summary>
internal sealed class RabbitMqHealthCheck(RabbitMqConnection connection) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var open = await connection.GetAsync(cancellationToken);
            return open.IsOpen ? HealthCheckResult.Healthy() : new HealthCheckResult(context.Registration.FailureStatus, "The broker connection is closed.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, "The broker cannot be reached; tasks wait on the outbox.", ex);
        }
    }

    public static void Register(IServiceCollection services) =>
        services.AddHealthChecks().AddCheck<RabbitMqHealthCheck>("rabbitmq", HealthStatus.Degraded, [HealthExtensions.ReadyTag], HealthExtensions.CheckTimeout);
}
