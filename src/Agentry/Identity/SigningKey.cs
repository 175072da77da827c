using System.Security.Cryptography;
using System.Text;
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

    /// <summary>PKCS#8 private key (signing) or raw key bytes (encryption), sealed by <see cref="SigningKeyProtection"/> when a key-encryption key is configured.</summary>
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

/// <summary>
/// Seals token keys at rest with AES-256-GCM under the configured key-encryption key; the key id is the
/// associated data, so a sealed key cannot be moved to another row. Sealed material starts with a marker,
/// so keys written before a key-encryption key was configured are still read (and sealed on the next load).
/// </summary>
internal static class SigningKeyProtection
{
    private static readonly byte[] Marker = "AGK1"u8.ToArray();
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public static byte[]? ParseKey(string base64)
    {
        try
        {
            return Convert.FromBase64String(base64) is { Length: 32 } key ? key : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public static bool IsSealed(byte[] material) =>
        material.Length > Marker.Length + NonceSize + TagSize && material.AsSpan(0, Marker.Length).SequenceEqual(Marker);

    public static byte[] Seal(byte[] plain, string keyId, byte[] kek)
    {
        var sealedMaterial = new byte[Marker.Length + NonceSize + TagSize + plain.Length];
        Marker.CopyTo(sealedMaterial, 0);
        var nonce = sealedMaterial.AsSpan(Marker.Length, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(kek, TagSize);
        aes.Encrypt(nonce, plain, sealedMaterial.AsSpan(Marker.Length + NonceSize + TagSize), sealedMaterial.AsSpan(Marker.Length + NonceSize, TagSize),
            Encoding.UTF8.GetBytes(keyId));
        return sealedMaterial;
    }

    /// <summary>The plain material; throws when it is sealed and no (or the wrong) key-encryption key is given.</summary>
    public static byte[] Open(byte[] material, string keyId, byte[]? kek)
    {
        if (!IsSealed(material))
        {
            return material;
        }
        if (kek is null)
        {
            throw new InvalidOperationException("The token keys in the database are encrypted; configure Agentry:Tokens:KeyEncryptionKey to read them.");
        }
        var plain = new byte[material.Length - Marker.Length - NonceSize - TagSize];
        using var aes = new AesGcm(kek, TagSize);
        try
        {
            aes.Decrypt(material.AsSpan(Marker.Length, NonceSize), material.AsSpan(Marker.Length + NonceSize + TagSize),
                material.AsSpan(Marker.Length + NonceSize, TagSize), plain, Encoding.UTF8.GetBytes(keyId));
        }
        catch (AuthenticationTagMismatchException ex)
        {
            throw new InvalidOperationException("Agentry:Tokens:KeyEncryptionKey does not open the token keys in the database (a different key?).", ex);
        }
        return plain;
    }
}
