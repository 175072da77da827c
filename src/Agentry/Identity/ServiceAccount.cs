using Agentry.Data;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>
/// A workspace's OAuth client for machines: it signs in with the client-credentials grant (client id and
/// secret, held by OpenIddict as a confidential application) and acts in its one workspace with its scopes,
/// like an API key but with short-lived tokens that resource servers can introspect.
/// </summary>
public sealed class ServiceAccount : INamedRow
{
    public Guid Id { get; init; }
    public Guid WorkspaceId { get; init; }
    public required string Name { get; init; }

    /// <summary>The OpenIddict application's client id (<c>sa_…</c>).</summary>
    public required string ClientId { get; init; }

    /// <summary>Space-separated, from <see cref="ApiKeyScopes.All"/>.</summary>
    public required string Scopes { get; init; }

    public Guid CreatedBy { get; init; }
    public DateTime CreatedAt { get; init; }

    /// <summary>Set when the account is deleted: its client is removed and its tokens revoked; the row stays for the record.</summary>
    public DateTime? DisabledAt { get; set; }
}

internal sealed class ServiceAccountConfiguration : IEntityTypeConfiguration<ServiceAccount>
{
    public void Configure(EntityTypeBuilder<ServiceAccount> account)
    {
        account.ToTable("service_accounts");
        account.HasKey(a => a.Id);
        account.Property(a => a.Name).HasMaxLength(100);
        account.Property(a => a.ClientId).HasMaxLength(64);
        account.Property(a => a.Scopes).HasMaxLength(400);
        account.HasIndex(a => a.ClientId).IsUnique();
        account.HasIndex(a => new { a.WorkspaceId, a.Id });
        account.HasOne<Workspace>().WithMany().HasForeignKey(a => a.WorkspaceId).OnDelete(DeleteBehavior.Cascade);
    }
}
