using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>
/// An identity at an external OpenID Connect provider (issuer + subject) that signs in as an Agentry
/// user. A table of its own rather than columns on users: a user may be linked to several issuers over
/// time (an IdP migration), and users stay untouched when the feature is off.
/// </summary>
public sealed class ExternalLogin
{
    public const int IssuerMaxLength = 512;
    public const int SubjectMaxLength = 255;

    public Guid Id { get; init; }
    public required string Issuer { get; init; }
    public required string Subject { get; init; }
    public Guid UserId { get; init; }
    public DateTime CreatedAt { get; init; }
}

internal sealed class ExternalLoginConfiguration : IEntityTypeConfiguration<ExternalLogin>
{
    public void Configure(EntityTypeBuilder<ExternalLogin> login)
    {
        login.ToTable("external_logins");
        login.HasKey(l => l.Id);
        login.Property(l => l.Id).ValueGeneratedNever();
        login.Property(l => l.Issuer).HasMaxLength(ExternalLogin.IssuerMaxLength);
        login.Property(l => l.Subject).HasMaxLength(ExternalLogin.SubjectMaxLength);
        login.HasIndex(l => new { l.Issuer, l.Subject }).IsUnique();
        login.HasIndex(l => l.UserId);
        login.HasOne<User>().WithMany().HasForeignKey(l => l.UserId).OnDelete(DeleteBehavior.Cascade);
    }
}
