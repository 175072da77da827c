using System.Text.Json;
using Agentry.Identity;
using Microsoft.Extensions.Options;

namespace Agentry.Tools;

/// <summary>
/// Keeps servers' environment and header values at rest the way the token keys are kept: sealed with AES-256-GCM under
/// <c>Agentry:Tokens:KeyEncryptionKey</c> when one is configured (the server id is the associated data, so sealed values
/// cannot be moved to another server), otherwise protected only by the database's own access control.
/// </summary>
internal sealed class McpSecretProtection(IOptions<TokenOptions> options)
{
    private readonly byte[]? _kek = options.Value.KeyEncryptionKey is { } configured ? SigningKeyProtection.ParseKey(configured) : null;

    public byte[] Seal(Guid serverId, McpServerSecrets secrets)
    {
        var plain = JsonSerializer.SerializeToUtf8Bytes(secrets, JsonSerializerOptions.Web);
        return _kek is null ? plain : SigningKeyProtection.Seal(plain, AssociatedData(serverId), _kek);
    }

    public McpServerSecrets Open(Guid serverId, byte[] stored)
    {
        if (stored.Length == 0)
        {
            return McpServerSecrets.None;
        }
        byte[] plain;
        try
        {
            plain = SigningKeyProtection.Open(stored, AssociatedData(serverId), _kek);
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException(
                $"The secrets of MCP server {serverId} are sealed with a key-encryption key this node does not have; set Agentry:Tokens:KeyEncryptionKey as on the node that wrote them.", ex);
        }
        return JsonSerializer.Deserialize<McpServerSecrets>(plain, JsonSerializerOptions.Web) ?? McpServerSecrets.None;
    }

    private static string AssociatedData(Guid serverId) => $"mcp-server:{serverId}";
}
