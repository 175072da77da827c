using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace Agentry.Identity;

/// <summary>Resolves a host name to addresses; DNS by default, replaceable for tests.</summary>
public delegate Task<IPAddress[]> HostResolver(string host, CancellationToken cancellationToken);

/// <summary>A server-side fetch the egress guard refused: the message says which rule.</summary>
public sealed class EgressDeniedException(string message) : HttpRequestException(message);

/// <summary>
/// The outbound HTTP pipeline for URLs that users supply. Only http and https; the host is resolved
/// once, every address is checked, and the connection goes to a checked address (so DNS rebinding
/// cannot swap it); redirects are followed here, each hop checked again; the response is capped in
/// size and time; no proxy is used, so none can route around the checks.
/// </summary>
internal sealed class EgressGuard(IOptions<EgressOptions> options, HostResolver resolve, ILogger<EgressGuard> logger)
{
    private readonly EgressOptions _options = options.Value;
    private readonly IPNetwork[] _allowedNetworks = options.Value.AllowedNetworks.Select(IPNetwork.Parse).ToArray();

    public HttpMessageHandler CreateHandler() => new RedirectAndLimitHandler(this)
    {
        InnerHandler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
            ConnectCallback = ConnectAsync,
        },
    };

    /// <summary>
    /// Why a URL a user registers for later requests is refused before any request is made (a scheme other than http(s),
    /// or a literal address the connection rules would refuse); null when it may be kept. A host name is checked on
    /// every connection instead, since what it resolves to can change.
    /// </summary>
    public string? Refuses(Uri uri)
    {
        if (!uri.IsAbsoluteUri || uri.Scheme is not ("http" or "https"))
        {
            return "The url must be an absolute http or https URL.";
        }
        var host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host;
        return IPAddress.TryParse(host, out var address) && EgressAddresses.IsSpecial(address)
            && !_options.AllowedHosts.Contains(host, StringComparer.OrdinalIgnoreCase) && !_allowedNetworks.Any(n => n.Contains(address))
            ? $"The url's address {address} is a loopback, private or reserved address; outbound requests may not reach it (see Agentry:Egress:AllowedNetworks)."
            : null;
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await resolve(host, cancellationToken);
        if (addresses.Length == 0)
        {
            throw new EgressDeniedException($"Host '{host}' has no address.");
        }
        var hostAllowed = _options.AllowedHosts.Contains(host, StringComparer.OrdinalIgnoreCase);
        foreach (var address in addresses)
        {
            if (!hostAllowed && EgressAddresses.IsSpecial(address) && !_allowedNetworks.Any(n => n.Contains(address)))
            {
                EgressLog.Denied(logger, host, address.ToString());
                throw new EgressDeniedException($"Host '{host}' resolves to {address}, a loopback, private or reserved address; outbound requests may not reach it.");
            }
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void RequireWebScheme(Uri uri)
    {
        if (!uri.IsAbsoluteUri || uri.Scheme is not ("http" or "https"))
        {
            throw new EgressDeniedException($"Only http and https URLs may be fetched, not '{(uri.IsAbsoluteUri ? uri.Scheme : uri.OriginalString)}'.");
        }
    }

    /// <summary>Follows redirects (checking each hop) and caps the response size.</summary>
    private sealed class RedirectAndLimitHandler(EgressGuard guard) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            for (var hop = 0; ; hop++)
            {
                RequireWebScheme(request.RequestUri!);
                var response = await base.SendAsync(request, cancellationToken);
                if (response.Headers.Location is not { } location || (int)response.StatusCode is < 300 or > 399)
                {
                    return Limit(response, guard._options.MaxResponseBytes);
                }
                response.Dispose();
                if (hop == guard._options.MaxRedirects)
                {
                    throw new EgressDeniedException($"More than {guard._options.MaxRedirects} redirects.");
                }
                request = Follow(request, new Uri(request.RequestUri!, location), response.StatusCode);
            }
        }

        /// <summary>The next hop: 303 (and 301/302 after a POST) become GET without a body; credentials stay with their host.</summary>
        private static HttpRequestMessage Follow(HttpRequestMessage previous, Uri target, HttpStatusCode status)
        {
            var keepMethod = status is HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect
                || (status is not HttpStatusCode.SeeOther && previous.Method == HttpMethod.Get);
            var next = new HttpRequestMessage(keepMethod ? previous.Method : HttpMethod.Get, target)
            {
                Content = keepMethod ? previous.Content : null,
                Version = previous.Version,
            };
            var sameOrigin = Uri.Compare(previous.RequestUri, target, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
            foreach (var header in previous.Headers.Where(h => sameOrigin || !h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)))
            {
                next.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
            return next;
        }

        private static HttpResponseMessage Limit(HttpResponseMessage response, long maxBytes)
        {
            if (response.Content.Headers.ContentLength > maxBytes)
            {
                response.Dispose();
                throw new EgressDeniedException($"The response is larger than {maxBytes} bytes.");
            }
            var original = response.Content;
            var limited = new StreamContent(new LimitedStream(original.ReadAsStream(), maxBytes));
            foreach (var header in original.Headers)
            {
                limited.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
            response.Content = limited;
            return response;
        }
    }

    /// <summary>A read-only stream that fails once more than the allowed bytes have passed.</summary>
    private sealed class LimitedStream(Stream inner, long maxBytes) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        private int Count(int read)
        {
            _read += read;
            return _read > maxBytes ? throw new EgressDeniedException($"The response is larger than {maxBytes} bytes.") : read;
        }
    }
}

public static class EgressExtensions
{
    /// <summary>The named HttpClient every feature uses to fetch a URL a user supplied.</summary>
    public const string ClientName = "agentry-egress";

    public static IHostApplicationBuilder AddEgressGuard(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<EgressOptions>()
            .BindConfiguration(EgressOptions.SectionName)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<EgressOptions>, EgressOptionsValidator>();
        builder.Services.AddSingleton<HostResolver>(static (host, ct) => Dns.GetHostAddressesAsync(host, ct));
        builder.Services.AddSingleton<EgressGuard>();
        builder.Services.AddHttpClient(ClientName, ConfigureClient)
            .ConfigurePrimaryHttpMessageHandler(sp => sp.GetRequiredService<EgressGuard>().CreateHandler());
        return builder;
    }

    private static void ConfigureClient(IServiceProvider services, HttpClient client)
    {
        var options = services.GetRequiredService<IOptions<EgressOptions>>().Value;
        client.Timeout = options.Timeout;
        client.MaxResponseContentBufferSize = options.MaxResponseBytes;
        client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Agentry", "1.0"));
    }
}

internal static partial class EgressLog
{
    [LoggerMessage(1, LogLevel.Warning, "Outbound request to {Host} refused: it resolves to {Address}")]
    public static partial void Denied(ILogger logger, string host, string address);
}
