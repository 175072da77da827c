using Agentry.Hosting;
using Agentry.Identity;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Agentry.Tools;

/// <summary>
/// One MCP server's session on this node, from one version of its configuration: started on first use (concurrent
/// first uses share one start), restarted with capped exponential back-off and jitter when the process exits or the
/// session breaks, and stopped when disposed. Its tool list is kept until the server says it changed.
/// </summary>
internal sealed class SupervisedServer : IAsyncDisposable
{
    public const string Idle = "idle";
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Backoff = "backoff";
    public const string Failed = "failed";
    public const string Disabled = "disabled";

    private readonly McpServer _server;
    private readonly McpServerDefinition _definition;
    private readonly McpServerRuntime _runtime;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _life = new();
    private McpClient? _client;
    private IAsyncDisposable? _transport;
    private Task<McpClient>? _starting;
    private Task<IReadOnlyList<Tool>>? _listing;
    private IReadOnlyList<Tool> _tools = [];
    private bool _toolsStale;
    private string _state = Idle;
    private string? _lastError;
    private int _restarts;
    private int _failures;
    private DateTime? _startedAt;
    private DateTimeOffset _retryAt;
    private bool _disposed;

    public SupervisedServer(McpServer server, McpServerRuntime runtime)
    {
        _server = server;
        _definition = McpServerDefinition.Parse(server.Definition);
        _runtime = runtime;
        _logger = runtime.Logger;
    }

    public Guid Id => _server.Id;

    public Guid WorkspaceId => _server.WorkspaceId;

    public string Name => _server.Name;

    /// <summary>The configuration version this session runs (the server's <see cref="McpServer.UpdatedAt"/>).</summary>
    public DateTime Version => _server.UpdatedAt;

    public McpServerStatus Status
    {
        get
        {
            lock (_gate)
            {
                return new(_state, _lastError, _restarts, _client is null ? 0 : _tools.Count, _startedAt);
            }
        }
    }

    /// <summary>How long until the next start may be tried, for a 503's <c>Retry-After</c>.</summary>
    public TimeSpan RetryAfter
    {
        get
        {
            lock (_gate)
            {
                var wait = _retryAt - _runtime.Clock.GetUtcNow();
                return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
            }
        }
    }

    /// <summary>The live session, starting it when there is none; <see cref="DependencyUnavailableException"/> when it cannot be had.</summary>
    public Task<McpClient> ConnectAsync(CancellationToken ct) => ConnectAsync(scheduled: false, ct);

    /// <summary>A <paramref name="scheduled"/> restart comes when its back-off is over, so it does not check the wait (a timer may fire a little early).</summary>
    private async Task<McpClient> ConnectAsync(bool scheduled, CancellationToken ct)
    {
        Task<McpClient> starting;
        lock (_gate)
        {
            if (_disposed)
            {
                // Its configuration changed or it was removed while this caller held it: the next use gets the new session.
                throw new DependencyUnavailableException($"MCP server '{Name}' was stopped (changed, removed or shutting down); retry.");
            }
            if (_client is { } client)
            {
                return client;
            }
            if (_starting is null)
            {
                if (!scheduled && _retryAt > _runtime.Clock.GetUtcNow())
                {
                    throw new DependencyUnavailableException($"MCP server '{Name}' is waiting to restart after a failure: {_lastError}");
                }
                _state = Starting;
                // Run apart from this caller: its cancellation must not end a start others wait for.
                _starting = Task.Run(StartAsync, CancellationToken.None);
            }
            starting = _starting;
        }
        return await starting.WaitAsync(ct);
    }

    /// <summary>The server's tools, from the cached list unless the server said it changed since.</summary>
    public async Task<IReadOnlyList<Tool>> ToolsAsync(CancellationToken ct)
    {
        var client = await ConnectAsync(ct);
        Task<IReadOnlyList<Tool>> listing;
        lock (_gate)
        {
            if (!_toolsStale && _client == client)
            {
                return _tools;
            }
            listing = _listing ??= Task.Run(() => RefreshToolsAsync(client), CancellationToken.None);
        }
        return await listing.WaitAsync(ct);
    }

    /// <summary>
    /// A call on <paramref name="client"/> failed in its transport (the process died, the connection broke): the
    /// session is dropped and restarted after the back-off. A later call with a newer session is not affected.
    /// </summary>
    public Task BreakAsync(McpClient client, Exception reason) => EndAsync(client, Describe(reason));

    private async Task<McpClient> StartAsync()
    {
        McpClient? client = null;
        IAsyncDisposable? transport = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_life.Token);
            timeout.CancelAfter(_runtime.Options.StartTimeout);
            var secrets = _runtime.Secrets.Open(_server.Id, _server.Secrets);
            IClientTransport connection = _server.Transport == McpTransports.Http ? Http(secrets) : Stdio(secrets);
            transport = connection as IAsyncDisposable;
            client = await McpClient.CreateAsync(connection, ClientOptions(), cancellationToken: timeout.Token);
            var tools = await client.ListToolsAsync(cancellationToken: timeout.Token);
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                (_client, _transport, _starting) = (client, transport, null);
                _tools = [.. tools.Select(t => t.ProtocolTool)];
                (_toolsStale, _state, _lastError, _failures) = (false, Running, null, 0);
                _startedAt = _runtime.Clock.GetUtcNow().UtcDateTime;
            }
            ToolsLog.Started(_logger, Name, Id, tools.Count);
            _ = WatchAsync(client);
            return client;
        }
        catch (Exception ex)
        {
            await DisposeQuietlyAsync(client, transport);
            var error = _life.IsCancellationRequested ? "The server was stopped." : Describe(ex);
            var delay = Fail(error, started: true);
            if (delay is { } wait)
            {
                ToolsLog.StartFailed(_logger, Name, Id, _failures, wait, error);
            }
            throw new DependencyUnavailableException($"MCP server '{Name}' could not be started: {error}", ex);
        }
    }

    /// <summary>Waits for the session to end by itself (the process exited, the transport closed) and restarts it.</summary>
    private async Task WatchAsync(McpClient client)
    {
        string error;
        try
        {
            var details = await client.Completion;
            error = details switch
            {
                StdioClientCompletionDetails { ExitCode: { } code } => $"The process exited with code {code}.",
                { Exception: { } ex } => Describe(ex),
                _ => "The session closed.",
            };
        }
        catch (Exception ex)
        {
            error = Describe(ex);
        }
        await EndAsync(client, error);
    }

    private async Task EndAsync(McpClient client, string error)
    {
        IAsyncDisposable? transport;
        lock (_gate)
        {
            if (_client != client || _disposed)
            {
                return; // already ended, or stopped on purpose
            }
            (_client, transport, _tools, _startedAt) = (null, _transport, [], null);
            _transport = null;
        }
        var delay = Fail(error, started: false);
        if (delay is { } wait)
        {
            ToolsLog.SessionEnded(_logger, Name, Id, wait, error);
        }
        await DisposeQuietlyAsync(client, transport);
    }

    /// <summary>Records a failure and schedules the next start; null when the server has failed too often in a row (or is stopping).</summary>
    private TimeSpan? Fail(string error, bool started)
    {
        TimeSpan delay;
        lock (_gate)
        {
            if (started)
            {
                _starting = null;
            }
            if (_disposed)
            {
                return null;
            }
            _failures++;
            _lastError = error;
            var options = _runtime.Options;
            var backoff = Math.Min(options.MaxRestartDelay.TotalMilliseconds, options.RestartDelay.TotalMilliseconds * Math.Pow(2, Math.Min(_failures - 1, 30)));
            delay = TimeSpan.FromMilliseconds(backoff * (0.8 + (Random.Shared.NextDouble() * 0.4)));
            _retryAt = _runtime.Clock.GetUtcNow() + delay;
            if (_failures >= options.MaxRestarts)
            {
                _state = Failed;
                ToolsLog.GaveUp(_logger, Name, Id, _failures, error);
                return null;
            }
            _state = Backoff;
        }
        _ = RestartLaterAsync(delay);
        return delay;
    }

    private async Task RestartLaterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _runtime.Clock, _life.Token);
            lock (_gate)
            {
                _restarts++;
            }
            await ConnectAsync(scheduled: true, _life.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or DependencyUnavailableException)
        {
            // Stopped, or the start failed (and recorded why and when it tries again).
        }
    }

    private async Task<IReadOnlyList<Tool>> RefreshToolsAsync(McpClient client)
    {
        try
        {
            lock (_gate)
            {
                _toolsStale = false; // a change announced while listing marks it stale again
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_life.Token);
            timeout.CancelAfter(_runtime.Options.StartTimeout);
            IReadOnlyList<Tool> tools = [.. (await client.ListToolsAsync(cancellationToken: timeout.Token)).Select(t => t.ProtocolTool)];
            lock (_gate)
            {
                if (_client == client)
                {
                    _tools = tools;
                }
            }
            return tools;
        }
        catch (Exception ex) when (ex is not DependencyUnavailableException)
        {
            lock (_gate)
            {
                _toolsStale = true;
            }
            await BreakAsync(client, ex);
            throw new DependencyUnavailableException($"MCP server '{Name}' did not list its tools: {Describe(ex)}", ex);
        }
        finally
        {
            lock (_gate)
            {
                _listing = null;
            }
        }
    }

    private McpClientOptions ClientOptions() => new()
    {
        ClientInfo = new Implementation { Name = "agentry", Version = "1.0" },
        Handlers = new McpClientHandlers
        {
            NotificationHandlers =
            [
                new(NotificationMethods.ToolListChangedNotification, (_, _) =>
                {
                    lock (_gate)
                    {
                        _toolsStale = true;
                    }
                    ToolsLog.ToolsChanged(_logger, Name, Id);
                    return ValueTask.CompletedTask;
                }),
            ],
        },
    };

    /// <summary>
    /// The child gets the configured variables plus a minimal <c>PATH</c> and <c>HOME</c>, and nothing of Agentry's
    /// own environment (where its secrets live).
    /// </summary>
    private StdioClientTransport Stdio(McpServerSecrets secrets)
    {
        var home = Path.Combine(_runtime.Options.Home, Id.ToString("N"));
        Directory.CreateDirectory(home);
        var environment = new Dictionary<string, string?> { ["PATH"] = _runtime.Options.ChildPath, ["HOME"] = home };
        foreach (var (name, value) in secrets.Environment)
        {
            environment[name] = value;
        }
        var maxLine = _runtime.Options.StderrLineMaxLength;
        return new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = Name,
            Command = _definition.Command!,
            Arguments = [.. _definition.Args],
            WorkingDirectory = _definition.WorkingDirectory ?? home,
            EnvironmentVariables = environment,
            InheritEnvironmentVariables = false,
            ShutdownTimeout = TimeSpan.FromSeconds(2),
            StandardErrorLines = line => ToolsLog.Stderr(_logger, Name, line.Length > maxLine ? line[..maxLine] + "…" : line),
        });
    }

    /// <summary>Streamable HTTP through the egress guard: every connection's address is checked as for any URL a user supplies.</summary>
    private HttpClientTransport Http(McpServerSecrets secrets) => new(
        new HttpClientTransportOptions
        {
            Name = Name,
            Endpoint = new Uri(_definition.Url!),
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = secrets.Headers.ToDictionary(),
        },
        new HttpClient(_runtime.Egress.CreateHandler()) { Timeout = Timeout.InfiniteTimeSpan },
        ownsHttpClient: true);

    private static async Task DisposeQuietlyAsync(McpClient? client, IAsyncDisposable? transport)
    {
        try
        {
            if (client is not null)
            {
                await client.DisposeAsync();
            }
            if (transport is not null)
            {
                await transport.DisposeAsync();
            }
        }
        catch (Exception)
        {
            // Ending a session that is already broken may fail again; the process is gone either way.
        }
    }

    /// <summary>What went wrong, in words safe to show: exception messages only (they never hold the configured secrets).</summary>
    internal static string Describe(Exception ex)
    {
        var inner = ex;
        while (inner is IOException or AggregateException && inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }
        var message = inner is OperationCanceledException ? "It did not answer in time." : inner.Message;
        return message.Length > 500 ? message[..500] : message;
    }

    public async ValueTask DisposeAsync()
    {
        McpClient? client;
        IAsyncDisposable? transport;
        Task<McpClient>? starting;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            (client, transport, starting) = (_client, _transport, _starting);
            (_client, _transport, _state) = (null, null, Idle);
        }
        await _life.CancelAsync();
        await DisposeQuietlyAsync(client, transport);
        if (starting is not null)
        {
            await starting.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
        ToolsLog.Stopped(_logger, Name, Id);
        _life.Dispose();
    }
}

/// <summary>What every supervised session shares.</summary>
internal sealed record McpServerRuntime(ToolsOptions Options, McpSecretProtection Secrets, EgressGuard Egress, TimeProvider Clock, ILogger Logger);
