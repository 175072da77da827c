using Agentry.Data;
using System.Security.Cryptography;
using System.Text;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>
/// A workspace's credential for scripts and services. Only a hash of the secret is kept; the secret
/// itself is shown once, when the key is created.
/// </summary>
public sealed class ApiKey : INamedRow
{
    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public required string Name { get; set; }

    /// <summary>The first characters of the secret, to recognise a key in lists and logs.</summary>
    public required string Prefix { get; init; }

    /// <summary>SHA-256 of the whole secret: the secret has 238 random bits, so a slow hash adds nothing.</summary>
    public required byte[] Hash { get; init; }

    /// <summary>Space-separated, from <see cref="ApiKeyScopes.All"/>.</summary>
    public required string Scopes { get; set; }

    public Guid CreatedBy { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? ExpiresAt { get; init; }

    /// <summary>Tokens the key's model calls may use per UTC day (within the workspace's own budget); null for no limit.</summary>
    public long? DailyTokenBudget { get; init; }

    public DateTime? LastUsedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
}

/// <summary>What an API key may do. Users are governed by their role; keys by their role-like scopes too.</summary>
public static class ApiKeyScopes
{
    public const string AgentsRead = "agents:read";
    public const string AgentsWrite = "agents:write";
    public const string TasksRead = "tasks:read";
    public const string TasksWrite = "tasks:write";
    public const string Chat = "chat";
    public const string KnowledgeRead = "knowledge:read";
    public const string KnowledgeWrite = "knowledge:write";
    public const string ToolsCall = "tools:call";

    /// <summary>Workspace administration (members, keys, audit, settings); implies every other scope.</summary>
    public const string Admin = "admin";

    public static readonly string[] All = [AgentsRead, AgentsWrite, TasksRead, TasksWrite, Chat, KnowledgeRead, KnowledgeWrite, ToolsCall, Admin];

    /// <summary>The workspace role a key with these scopes acts with: read-only keys are viewers.</summary>
    public static string RoleFor(IReadOnlyCollection<string> scopes) =>
        scopes.Contains(Admin) ? Roles.Admin
        : scopes.Any(s => s is not (AgentsRead or TasksRead or KnowledgeRead)) ? Roles.Member
        : Roles.Viewer;

    public static bool Grants(IReadOnlyCollection<string> scopes, string required) => scopes.Contains(required) || scopes.Contains(Admin);
}

/// <summary>
/// The key format: <c>agt_</c>, 40 random base62 characters, then a 6-character checksum of them, so
/// that typos and truncated copies are refused without a database lookup and secret scanners can
/// recognise a leaked key.
/// </summary>
public static class ApiKeySecret
{
    public const string Marker = "agt_";
    private const int SecretLength = 40;
    private const int ChecksumLength = 6;
    public const int Length = 4 + SecretLength + ChecksumLength;
    /// <summary>The alphabet of generated secrets: no characters that need escaping or break a double-click selection.</summary>
    internal const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string Create()
    {
        var secret = RandomNumberGenerator.GetString(Base62, SecretLength);
        return Marker + secret + Checksum(secret);
    }

    /// <summary>True when <paramref name="value"/> looks like an Agentry key and its checksum matches.</summary>
    public static bool IsWellFormed(ReadOnlySpan<char> value)
    {
        if (value.Length != Length || !value.StartsWith(Marker, StringComparison.Ordinal))
        {
            return false;
        }
        var secret = value.Slice(Marker.Length, SecretLength);
        return secret.IndexOfAnyExcept(Base62) < 0 && value[^ChecksumLength..].SequenceEqual(Checksum(secret));
    }

    public static byte[] Hash(string key) => SHA256.HashData(Encoding.ASCII.GetBytes(key));

    public static string PrefixOf(string key) => key[..12];

    private static string Checksum(ReadOnlySpan<char> secret)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.ASCII.GetBytes(secret.ToArray()), digest);
        Span<char> checksum = stackalloc char[ChecksumLength];
        for (var i = 0; i < ChecksumLength; i++)
        {
            checksum[i] = Base62[digest[i] % Base62.Length];
        }
        return new string(checksum);
    }
}

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> key)
    {
        key.ToTable("api_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Name).HasMaxLength(100);
        key.Property(k => k.Prefix).HasMaxLength(16);
        key.Property(k => k.Hash).HasMaxLength(32);
        key.Property(k => k.Scopes).HasMaxLength(400);
        key.HasIndex(k => k.Hash).IsUnique();
        key.HasIndex(k => new { k.WorkspaceId, k.CreatedAt });
        key.HasOne<Workspace>().WithMany().HasForeignKey(k => k.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
    }
}
