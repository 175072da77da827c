using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Identity;

/// <summary>
/// A token key kept in the database, so every node and every restart signs and verifies with the
/// same keys. <see cref="Generation"/> is unique per use: nodes that start together agree on one key.
/// </summary>
public sealed class SigningKey
{
    public const string Signing = "sig";
    public const string Encryption = "enc";

    /// <summary>The key id (<c>kid</c>) published in JWKS.</summary>
    public required string Id { get; init; }

    /// <summary><see cref="Signing"/> (RSA, RS256) or <see cref="Encryption"/> (AES-256, for refresh tokens).</summary>
    public required string Use { get; init; }

    public int Generation { get; init; }

    /// <summary>PKCS#8 private key (signing) or raw key bytes (encryption).</summary>
    public required byte[] Material { get; init; }

    public DateTime CreatedAt { get; init; }
}

internal sealed class SigningKeyConfiguration : IEntityTypeConfiguration<SigningKey>
{
    public void Configure(EntityTypeBuilder<SigningKey> key)
    {
        key.ToTable("signing_keys");
        key.HasKey(k => k.Id);
        key.Property(k => k.Id).HasMaxLength(64);
        key.Property(k => k.Use).HasMaxLength(8);
        key.HasIndex(k => new { k.Use, k.Generation }).IsUnique();
    }
}
