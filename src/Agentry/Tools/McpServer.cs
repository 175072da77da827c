using System.Text.Json;
using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Tools;

/// <summary>
/// An MCP server registered for a workspace: a command Agentry runs over stdio, or a Streamable HTTP endpoint. Its
/// environment and header values are secrets, kept apart in <see cref="Secrets"/> (sealed when a key-encryption key is
/// configured) and never shown; <see cref="Definition"/> holds everything else, and the names of those values.
/// </summary>
public sealed class McpServer : INamedRow
{
    public const int NameMaxLength = 32;

    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }

    /// <summary>A slug, unique in the workspace: the first part of its tools' qualified names.</summary>
    public required string Name { get; set; }

    /// <summary>One of <see cref="McpTransports.All"/>.</summary>
    public required string Transport { get; set; }

    /// <summary>The <see cref="McpServerDefinition"/> as JSON.</summary>
    public required string Definition { get; set; }

    /// <summary>The <see cref="McpServerSecrets"/> as JSON bytes, sealed by <see cref="McpSecretProtection"/>.</summary>
    public required byte[] Secrets { get; set; }

    public bool Enabled { get; set; }

    public int CallTimeoutSeconds { get; set; }

    /// <summary>Every tool of the server needs a person's approval before it runs.</summary>
    public bool RequireApproval { get; set; }

    public DateTime CreatedAt { get; init; }

    /// <summary>Also the configuration's version: a node whose session was started from an older one restarts it.</summary>
    public DateTime UpdatedAt { get; set; }

    public Guid? CreatedBy { get; init; }
}

public static class McpTransports
{
    public const string Stdio = "stdio";
    public const string Http = "http";

    public static readonly string[] All = [Stdio, Http];
}

/// <summary>Everything about a server but its name, transport, flags and secret values.</summary>
public sealed record McpServerDefinition(
    string? Command, IReadOnlyList<string> Args, string? WorkingDirectory, string? Url,
    IReadOnlyList<string> EnvironmentNames, IReadOnlyList<string> HeaderNames, IReadOnlyList<string> ApprovalTools)
{
    public string ToJson() => JsonSerializer.Serialize(this, JsonSerializerOptions.Web);

    public static McpServerDefinition Parse(string json) => JsonSerializer.Deserialize<McpServerDefinition>(json, JsonSerializerOptions.Web)!;
}

/// <summary>The values a server's process or requests get and nobody reads back.</summary>
public sealed record McpServerSecrets(IReadOnlyDictionary<string, string> Environment, IReadOnlyDictionary<string, string> Headers)
{
    public static readonly McpServerSecrets None = new(new Dictionary<string, string>(), new Dictionary<string, string>());
}

internal sealed class McpServerConfiguration : IEntityTypeConfiguration<McpServer>
{
    public void Configure(EntityTypeBuilder<McpServer> server)
    {
        server.ToTable("mcp_servers");
        server.HasKey(s => s.Id);
        server.Property(s => s.Id).ValueGeneratedNever();
        server.Property(s => s.Name).HasMaxLength(McpServer.NameMaxLength);
        server.Property(s => s.Transport).HasMaxLength(16);
        server.HasOne<Workspace>().WithMany().HasForeignKey(s => s.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
        server.HasIndex(s => new { s.WorkspaceId, s.Name }).IsUnique();
        server.HasIndex(s => new { s.WorkspaceId, s.Id });
    }
}
