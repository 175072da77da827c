using System.Net;
using System.Net.Sockets;
using Agentry.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Agentry.Tests.Identity;

/// <summary>
/// The outbound guard against real loopback listeners: forbidden targets are plain TCP listeners
/// that count every connection they accept, so "refused" means no connection reached them.
/// Names are resolved by a test resolver that maps made-up names to loopback (a broken guard could
/// only ever reach these test listeners, never another machine).
/// </summary>
public sealed class EgressGuardTests : IAsyncLifetime
{
    private const string AllowedName = "allowed.example";
    private const string SneakyName = "sneaky.example";

    private readonly CountingListener _forbidden = new();
    private WebApplication _server = null!;
    private int _serverPort;
    private IHost _host = null!;
    private HttpClient _client = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await StartServerAsync();
        _serverPort = new Uri(_server.Urls.First()).Port;
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration["Agentry:Egress:AllowedHosts:0"] = AllowedName;
        builder.Configuration["Agentry:Egress:MaxResponseBytes"] = "65536";
        builder.Configuration["Agentry:Egress:Timeout"] = "00:00:02";
        builder.Configuration["Agentry:Egress:MaxRedirects"] = "3";
        builder.AddEgressGuard();
        builder.Services.AddSingleton<HostResolver>(Resolve);
        _host = builder.Build();
        _client = _host.Services.GetRequiredService<IHttpClientFactory>().CreateClient(EgressExtensions.ClientName);
    }

    public async ValueTask DisposeAsync()
    {
        _host.Dispose();
        await _server.DisposeAsync();
        _forbidden.Dispose();
    }

    [Theory]
    [InlineData("http://127.0.0.1:{0}/")]
    [InlineData("http://127.1.2.3:{0}/")]
    [InlineData("http://localhost:{0}/")]
    [InlineData("http://2130706433:{0}/")]            // 127.0.0.1 as one decimal number
    [InlineData("http://[::ffff:127.0.0.1]:{0}/")]    // IPv4-mapped IPv6
    [InlineData("http://sneaky.example:{0}/")]         // a public-looking name that resolves to loopback
    public async Task Loopback_targets_are_refused_before_any_connection(string template)
    {
        var url = string.Format(template, _forbidden.Port);

        var error = await Assert.ThrowsAnyAsync<HttpRequestException>(() => _client.GetAsync(url));

        Assert.True(FindDenied(error) is not null, $"{url}: {error}");
        Assert.Equal(0, _forbidden.Accepted);
    }

    [Fact]
    public async Task A_redirect_to_a_forbidden_address_is_refused_at_the_hop()
    {
        var url = $"http://{AllowedName}:{_serverPort}/redirect?to={Uri.EscapeDataString($"http://127.0.0.1:{_forbidden.Port}/latest/meta-data/")}";

        var error = await Assert.ThrowsAnyAsync<HttpRequestException>(() => _client.GetAsync(url));

        Assert.NotNull(FindDenied(error));
        Assert.Equal(0, _forbidden.Accepted);
    }

    [Theory]
    [InlineData("file:///etc/passwd")]
    [InlineData("ftp://allowed.example/x")]
    public async Task Only_http_and_https_may_be_fetched(string url) =>
        Assert.NotNull(FindDenied(await Assert.ThrowsAnyAsync<Exception>(() => _client.GetAsync(url))));

    [Fact]
    public async Task A_redirect_to_another_scheme_is_refused() =>
        Assert.NotNull(FindDenied(await Assert.ThrowsAnyAsync<HttpRequestException>(
            () => _client.GetAsync($"http://{AllowedName}:{_serverPort}/redirect?to={Uri.EscapeDataString("file:///etc/passwd")}"))));

    [Fact]
    public async Task Redirect_loops_stop_at_the_limit() =>
        Assert.NotNull(FindDenied(await Assert.ThrowsAnyAsync<HttpRequestException>(
            () => _client.GetAsync($"http://{AllowedName}:{_serverPort}/loop"))));

    [Fact]
    public async Task An_allow_listed_host_is_fetched_and_redirects_within_it_are_followed()
    {
        var direct = await _client.GetStringAsync($"http://{AllowedName}:{_serverPort}/ok");
        var redirected = await _client.GetStringAsync($"http://{AllowedName}:{_serverPort}/redirect?to=/ok");

        Assert.Equal("ok", direct);
        Assert.Equal("ok", redirected);
    }

    [Theory]
    [InlineData("/big")]         // declared length over the cap
    [InlineData("/big-chunked")] // no length: cut off while reading
    public async Task Responses_over_the_size_cap_are_refused(string path)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            using var response = await _client.GetAsync($"http://{AllowedName}:{_serverPort}{path}", HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync();
            await body.CopyToAsync(Stream.Null);
        });

        Assert.NotNull(FindDenied(error));
    }

    [Fact]
    public async Task Slow_responses_are_cut_off_at_the_timeout()
    {
        var started = DateTime.UtcNow;

        await Assert.ThrowsAnyAsync<TaskCanceledException>(() => _client.GetAsync($"http://{AllowedName}:{_serverPort}/slow"));

        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(20));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("172.31.255.255")]
    [InlineData("192.168.0.1")]
    [InlineData("169.254.169.254")] // cloud metadata
    [InlineData("100.64.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("224.0.0.1")]
    [InlineData("::1")]
    [InlineData("fe80::1")]
    [InlineData("fd00::1")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("64:ff9b::a9fe:a9fe")] // NAT64 of 169.254.169.254
    [InlineData("2002:a00:1::")]       // 6to4 of 10.0.0.1
    public void Special_addresses_are_recognised(string address) =>
        Assert.True(EgressAddresses.IsSpecial(IPAddress.Parse(address)));

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("1.1.1.1")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("172.32.0.1")]
    public void Public_addresses_are_not_special(string address) =>
        Assert.False(EgressAddresses.IsSpecial(IPAddress.Parse(address)));

    private static Task<IPAddress[]> Resolve(string host, CancellationToken cancellationToken) => Task.FromResult(host switch
    {
        AllowedName or SneakyName or "localhost" => new[] { IPAddress.Loopback },
        _ => throw new SocketException((int)SocketError.HostNotFound),
    });

    private static EgressDeniedException? FindDenied(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is EgressDeniedException denied)
            {
                return denied;
            }
        }
        return null;
    }

    private static async Task<WebApplication> StartServerAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapGet("/ok", () => "ok");
        app.MapGet("/redirect", (string to) => Results.Redirect(to));
        app.MapGet("/loop", () => Results.Redirect("/loop"));
        app.MapGet("/big", () => Results.Text(new string('x', 200_000)));
        app.MapGet("/big-chunked", WriteChunkedAsync);
        app.MapGet("/slow", SlowAsync);
        await app.StartAsync();
        return app;
    }

    private static async Task WriteChunkedAsync(HttpResponse response)
    {
        var chunk = new byte[16_384];
        for (var i = 0; i < 20; i++)
        {
            await response.Body.WriteAsync(chunk);
            await response.Body.FlushAsync();
        }
    }

    private static async Task<string> SlowAsync(CancellationToken cancellationToken)
    {
        await Task.Delay(TimeSpan.FromSeconds(30), cancellationToken);
        return "late";
    }

    private sealed class CountingListener : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private int _accepted;

        public CountingListener()
        {
            _listener.Start();
            _ = AcceptLoopAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Accepted => Volatile.Read(ref _accepted);

        public void Dispose() => _listener.Stop();

        private async Task AcceptLoopAsync()
        {
            try
            {
                while (true)
                {
                    using var client = await _listener.AcceptTcpClientAsync();
                    Interlocked.Increment(ref _accepted);
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // stopped
            }
        }
    }
}
