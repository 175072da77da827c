using System.Net;
using System.Net.Sockets;

namespace Agentry.Identity;

/// <summary>
/// The address ranges a server-side fetch must never reach unless allow-listed: loopback, private,
/// link-local (including the 169.254.169.254 cloud metadata service), carrier-grade NAT,
/// documentation, benchmarking, multicast and reserved ranges, for IPv4 and IPv6 (RFC 6890 and its
/// registries). IPv6 forms that carry an IPv4 address are judged by that address.
/// </summary>
public static class EgressAddresses
{
    private static readonly IPNetwork[] Special =
    [
        .. new[]
        {
            "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
            "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
            "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
            "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
            "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
        }.Select(IPNetwork.Parse),
    ];

    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork SixToFour = IPNetwork.Parse("2002::/16");

    /// <summary>True when <paramref name="address"/> is not a public unicast address.</summary>
    public static bool IsSpecial(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && EmbeddedIPv4(address) is { } v4)
        {
            return IsSpecial(v4);
        }
        foreach (var network in Special)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }
        return false;
    }

    private static IPAddress? EmbeddedIPv4(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        var bytes = address.GetAddressBytes();
        if (Nat64.Contains(address))
        {
            return new IPAddress(bytes.AsSpan(12, 4));
        }
        if (SixToFour.Contains(address))
        {
            return new IPAddress(bytes.AsSpan(2, 4));
        }
        // IPv4-compatible (deprecated) ::a.b.c.d
        return bytes.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0 && !IPAddress.IPv6None.Equals(address) && !IPAddress.IPv6Loopback.Equals(address)
            ? new IPAddress(bytes.AsSpan(12, 4))
            : null;
    }
}
