using System.Security.Cryptography;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.IdentityModel.Tokens;

namespace Agentry.Identity;

/// <summary>
/// The token keys, read from the database (created there by the first node that needs one). The newest
/// generation signs; older ones stay published so tokens they signed still verify.
/// </summary>
internal sealed class KeyRing(IServiceScopeFactory scopes, TimeProvider clock)
{
    private readonly Lazy<(SecurityKey[] Signing, SecurityKey[] Encryption)> _keys = new(() => Load(scopes, clock));

    /// <summary>Signing keys, newest first (OpenIddict signs with the first).</summary>
    public SecurityKey[] SigningKeys => _keys.Value.Signing;

    public SecurityKey[] EncryptionKeys => _keys.Value.Encryption;

    private static (SecurityKey[], SecurityKey[]) Load(IServiceScopeFactory scopes, TimeProvider clock)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        EnsureKey(db, SigningKey.Signing, clock);
        EnsureKey(db, SigningKey.Encryption, clock);
        var keys = db.SigningKeys.AsNoTracking().OrderByDescending(k => k.Generation).ToList();
        return (
            keys.Where(k => k.Use == SigningKey.Signing).Select(ToRsa).ToArray(),
            keys.Where(k => k.Use == SigningKey.Encryption).Select(k => (SecurityKey)new SymmetricSecurityKey(k.Material) { KeyId = k.Id }).ToArray());
    }

    private static void EnsureKey(AppDbContext db, string use, TimeProvider clock)
    {
        if (db.SigningKeys.Any(k => k.Use == use))
        {
            return;
        }
        byte[] material;
        if (use == SigningKey.Signing)
        {
            using var rsa = RSA.Create(2048);
            material = rsa.ExportPkcs8PrivateKey();
        }
        else
        {
            material = RandomNumberGenerator.GetBytes(32);
        }
        db.SigningKeys.Add(new SigningKey
        {
            Id = Guid.CreateVersion7().ToString("N"),
            Use = use,
            Generation = 1,
            Material = material,
            CreatedAt = clock.UtcNow(),
        });
        try
        {
            db.SaveChanges();
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            // Another node created generation 1 at the same moment: use theirs.
            db.ChangeTracker.Clear();
        }
    }

    private static SecurityKey ToRsa(SigningKey key)
    {
        var rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(key.Material, out _);
        return new RsaSecurityKey(rsa) { KeyId = key.Id };
    }
}
