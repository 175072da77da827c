using System.Security.Cryptography;
using Agentry.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace Agentry.Identity;

/// <summary>
/// The token keys, kept in the database so every node and every restart agree. Signing keys rotate on a
/// schedule: a new generation is published (JWKS, validation) as soon as it exists but signs only after
/// a lead of two refresh intervals, by which time every node has loaded it; a retired key stays published
/// until the tokens it signed have expired, then it is deleted.
/// </summary>
internal sealed class KeyRing(IServiceScopeFactory scopes, TimeProvider clock, IOptions<TokenOptions> options)
{
    private readonly Lock _gate = new();
    private Snapshot? _snapshot;
    private CancellationTokenSource _changed = new();

    /// <summary>Published signing keys, the active signer first: what verifies and what JWKS lists.</summary>
    public SecurityKey[] SigningKeys => Current.Signing;

    public SecurityKey[] EncryptionKeys => Current.Encryption;

    /// <summary>Fires when <see cref="Reload"/> changed the published keys (OpenIddict rebuilds its options then).</summary>
    public IChangeToken ChangeToken => new CancellationChangeToken(_changed.Token);

    private Snapshot Current
    {
        get
        {
            if (_snapshot is { } snapshot)
            {
                return snapshot;
            }
            lock (_gate)
            {
                return _snapshot ??= Load();
            }
        }
    }

    /// <summary>Rotates when due and reads the keys again; run on every node every refresh interval.</summary>
    public void Reload()
    {
        Snapshot fresh;
        lock (_gate)
        {
            fresh = Load();
            var old = _snapshot;
            _snapshot = fresh;
            if (old is not null && old.Fingerprint == fresh.Fingerprint)
            {
                return;
            }
        }
        var changed = Interlocked.Exchange(ref _changed, new CancellationTokenSource());
        changed.Cancel();
        changed.Dispose();
    }

    private Snapshot Load()
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var settings = options.Value;
        var now = clock.UtcNow();
        var lead = 2 * settings.KeyRefreshInterval;
        var kek = settings.KeyEncryptionKey is { } configured ? SigningKeyProtection.ParseKey(configured) : null;

        var signing = db.SigningKeys.AsNoTracking().Where(k => k.Use == SigningKey.Signing).OrderByDescending(k => k.Generation).ToList();
        if (signing.Count == 0 || signing[0].CreatedAt + settings.SigningKeyRotation <= now)
        {
            AddGeneration(db, SigningKey.Signing, signing.Count == 0 ? 1 : signing[0].Generation + 1, now, kek);
            signing = db.SigningKeys.AsNoTracking().Where(k => k.Use == SigningKey.Signing).OrderByDescending(k => k.Generation).ToList();
        }
        if (!db.SigningKeys.Any(k => k.Use == SigningKey.Encryption))
        {
            AddGeneration(db, SigningKey.Encryption, 1, now, kek);
        }

        // The signer: the newest key every node has had time to load (the first key ever signs at once).
        var signerIndex = signing.FindIndex(k => k.CreatedAt + lead <= now) is var i and >= 0 ? i : signing.Count - 1;
        var published = new List<SigningKey>(signing.Take(signerIndex + 1));
        // An older key verifies until every token it signed has expired: it stopped signing when its
        // successor activated (plus a minute for validation's clock skew).
        for (var j = signerIndex + 1; j < signing.Count && signing[j - 1].CreatedAt + lead + settings.AccessTokenLifetime + TimeSpan.FromMinutes(1) > now; j++)
        {
            published.Add(signing[j]);
        }
        var oldest = published.Min(k => k.Generation);
        db.SigningKeys.Where(k => k.Use == SigningKey.Signing && k.Generation < oldest).ExecuteDelete();

        var ordered = published.OrderBy(k => k == signing[signerIndex] ? 0 : 1).ThenByDescending(k => k.Generation).ToList();
        var encryption = db.SigningKeys.AsNoTracking().Where(k => k.Use == SigningKey.Encryption).OrderByDescending(k => k.Generation).ToList();
        if (kek is not null)
        {
            SealPlainKeys(db, ordered.Concat(encryption), kek);
        }
        return new Snapshot(
            ordered.Select(k => ToRsa(k, kek)).ToArray(),
            encryption.Select(k => (SecurityKey)new SymmetricSecurityKey(SigningKeyProtection.Open(k.Material, k.Id, kek)) { KeyId = k.Id }).ToArray(),
            string.Join(',', ordered.Select(k => k.Id)) + ';' + string.Join(',', encryption.Select(k => k.Id)));
    }

    /// <summary>Keys written before a key-encryption key was configured are sealed now.</summary>
    private static void SealPlainKeys(AppDbContext db, IEnumerable<SigningKey> keys, byte[] kek)
    {
        foreach (var key in keys.Where(k => !SigningKeyProtection.IsSealed(k.Material)))
        {
            var sealedMaterial = SigningKeyProtection.Seal(key.Material, key.Id, kek);
            db.SigningKeys.Where(k => k.Id == key.Id).ExecuteUpdate(u => u.SetProperty(k => k.Material, sealedMaterial));
        }
    }

    private static void AddGeneration(AppDbContext db, string use, int generation, DateTime now, byte[]? kek)
    {
        var id = Ids.New().ToString("N");
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
            Id = id,
            Use = use,
            Generation = generation,
            Material = kek is null ? material : SigningKeyProtection.Seal(material, id, kek),
            CreatedAt = now,
        });
        try
        {
            db.SaveChanges();
        }
        catch (DbUpdateException ex) when (ex.IsUniqueViolation())
        {
            // Another node created this generation at the same moment: use theirs.
        }
        db.ChangeTracker.Clear();
    }

    private static SecurityKey ToRsa(SigningKey key, byte[]? kek)
    {
        var rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(SigningKeyProtection.Open(key.Material, key.Id, kek), out _);
        return new RsaSecurityKey(rsa) { KeyId = key.Id };
    }

    private sealed record Snapshot(SecurityKey[] Signing, SecurityKey[] Encryption, string Fingerprint);
}

/// <summary>Every node reloads (and, when due, rotates) the keys every <see cref="TokenOptions.KeyRefreshInterval"/>.</summary>
internal sealed class KeyRotation(KeyRing keys, IOptions<TokenOptions> options, TimeProvider clock, ILogger<KeyRotation> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.KeyRefreshInterval, clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                keys.Reload();
            }
            catch (Exception ex) when (ex.IsDatabaseOutage())
            {
                IdentityLog.KeyReloadDeferred(logger, ex.Message);
            }
        }
    }
}

/// <summary>Rebuilds OpenIddict's options (signing credentials, JWKS) when the key ring changes.</summary>
internal sealed class KeyRingOptionsSource(KeyRing keys) : IOptionsChangeTokenSource<OpenIddictServerOptions>
{
    public string Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => keys.ChangeToken;
}
