using System.Globalization;
using System.Net.Http.Json;
using System.Reflection;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Agentry.Mesh;

/// <summary>
/// Registers this node with the local Consul agent once it listens (<c>PUT /v1/agent/service/register</c>: name, id,
/// address, port, tags and meta with its role and version, and an HTTP check on <c>/health/ready</c> with a
/// deregister-after for a node that crashes), retrying with back-off while the agent cannot be reached; and deregisters
/// it when the node stops (<c>PUT /v1/agent/service/deregister/{id}</c>), before the server stops taking requests.
/// </summary>
internal sealed partial class ConsulRegistration(
    IHttpClientFactory http, IServer server, IHostApplicationLifetime lifetime, IConfiguration configuration, IOptions<ConsulOptions> options,
    TimeProvider clock, ILogger<ConsulRegistration> logger) : IHostedService
{
    public const string HttpClientName = "consul";
    private static readonly TimeSpan MaxBackOff = TimeSpan.FromSeconds(30);

    private readonly CancellationTokenSource _stopping = new();
    private Task _registering = Task.CompletedTask;
    private string? _registeredId;

    public static string Version { get; } =
        (typeof(ConsulRegistration).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0").Split('+')[0];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // The port is known once the server listens.
        lifetime.ApplicationStarted.Register(() => _registering = Task.Run(() => RegisterAsync(_stopping.Token)));
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _registering.ContinueWith(_ => { }, TaskScheduler.Default);
        // Once: a host may be stopped twice (a test host is), and a second deregistration would only be noise.
        if (Interlocked.Exchange(ref _registeredId, null) is not { } id)
        {
            return;
        }
        try
        {
            using var response = await Client().PutAsync($"v1/agent/service/deregister/{Uri.EscapeDataString(id)}", null, cancellationToken);
            response.EnsureSuccessStatusCode();
            Log.Deregistered(logger, id);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            // Consul removes it once its check has been critical for DeregisterCriticalAfter.
            Log.DeregisterFailed(logger, id, ex.Message);
        }
    }

    /// <summary>The registration this node makes: what Consul's agent API takes as a service definition.</summary>
    public ConsulService Describe()
    {
        var o = options.Value;
        var role = configuration[Agentry.Tasks.TaskExtensions.RoleKey] ?? "all";
        var (host, port) = Listening();
        var address = o.AdvertiseAddress ?? (host is "0.0.0.0" or "[::]" or "::" or "*" or "+" ? Environment.MachineName : host.Trim('[', ']'));
        var advertisedPort = o.AdvertisePort ?? port
            ?? throw new InvalidOperationException("Agentry:Consul:AdvertisePort is needed: the server reports no port it listens on.");
        var id = o.ServiceId ?? $"{o.ServiceName}-{role}-{address}-{advertisedPort}".Replace(':', '-');
        var root = new UriBuilder(Uri.UriSchemeHttp, address.Contains(':') ? $"[{address}]" : address, advertisedPort).Uri;
        return new ConsulService(
            id, o.ServiceName, [role, $"v{Version}", .. o.Tags], address, advertisedPort,
            new Dictionary<string, string> { ["role"] = role, ["version"] = Version },
            new ConsulCheck(new Uri(root, "/health/ready").ToString(), "GET", Duration(o.CheckInterval), Duration(o.CheckTimeout), Duration(o.DeregisterCriticalAfter)));
    }

    private async Task RegisterAsync(CancellationToken ct)
    {
        var delay = TimeSpan.FromSeconds(1);
        for (var attempt = 1; !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                var service = Describe();
                using var response = await Client().PutAsJsonAsync("v1/agent/service/register?replace-existing-checks=true", service, ConsulService.Json, ct);
                if (response.IsSuccessStatusCode)
                {
                    _registeredId = service.ID;
                    Log.Registered(logger, service.ID, service.Name, service.Address, service.Port);
                    return;
                }
                // A refusal (a bad ACL token: 403) will not mend itself quickly; it is retried all the same, and said.
                Log.RegisterFailed(logger, attempt, $"Consul answered {(int)response.StatusCode} {response.StatusCode}", delay);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                Log.RegisterFailed(logger, attempt, ex.Message, delay);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            try
            {
                await Task.Delay(delay, clock, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxBackOff.Ticks));
        }
    }

    private HttpClient Client() => http.CreateClient(HttpClientName);

    private (string Host, int? Port) Listening()
    {
        var first = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        if (first is null)
        {
            return ("127.0.0.1", null);
        }
        // Kestrel's addresses may use wildcards (http://+:8080), which Uri does not parse as hosts.
        var authority = first[(first.IndexOf("://", StringComparison.Ordinal) + 3)..].TrimEnd('/');
        var colon = authority.LastIndexOf(':');
        return colon > 0 && int.TryParse(authority[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            ? (authority[..colon], port)
            : (authority, null);
    }

    /// <summary>A Go duration, as Consul reads them: <c>10s</c>.</summary>
    private static string Duration(TimeSpan span) => $"{(long)Math.Ceiling(span.TotalSeconds)}s";

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Registered with Consul as {ServiceId} (service {Service}, {Address}:{Port})")]
        public static partial void Registered(ILogger logger, string serviceId, string service, string address, int port);

        [LoggerMessage(2, LogLevel.Warning, "Registering with Consul failed (attempt {Attempt}): {Error}; next try in {Delay}")]
        public static partial void RegisterFailed(ILogger logger, int attempt, string error, TimeSpan delay);

        [LoggerMessage(3, LogLevel.Information, "Deregistered {ServiceId} from Consul")]
        public static partial void Deregistered(ILogger logger, string serviceId);

        [LoggerMessage(4, LogLevel.Warning, "Deregistering {ServiceId} from Consul failed: {Error}; Consul removes it once its check stays critical")]
        public static partial void DeregisterFailed(ILogger logger, string serviceId, string error);
    }
}

/// <summary>A service definition in the shape of Consul's agent API (its field names are PascalCase, with <c>ID</c>).</summary>
internal sealed record ConsulService(string ID, string Name, IReadOnlyList<string> Tags, string Address, int Port, IReadOnlyDictionary<string, string> Meta, ConsulCheck Check)
{
    public static readonly System.Text.Json.JsonSerializerOptions Json = new() { PropertyNamingPolicy = null };
}

internal sealed record ConsulCheck(string HTTP, string Method, string Interval, string Timeout, string DeregisterCriticalServiceAfter);
