using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Identity;

/// <summary>Token keys at rest: sealed under Agentry:Tokens:KeyEncryptionKey when it is configured.</summary>
public sealed class KeyProtectionTests
{
    private static readonly string Kek = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    [Fact]
    public async Task Keys_written_before_a_key_encryption_key_are_sealed_once_it_is_set_and_tokens_keep_working()
    {
        var file = TempFiles.Database();
        string token;
        await using (var plain = new AgentryApp(Settings.Sqlite(file)))
        {
            token = (await AgentryApp.RequestTokensAsync(plain.Client(), AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;
            Assert.All(await KeysAsync(plain), k => Assert.False(SigningKeyProtection.IsSealed(k.Material)));
        }

        await using (var sealedApp = new AgentryApp(Settings.Sqlite(file).With(new Dictionary<string, string?> { ["Agentry:Tokens:KeyEncryptionKey"] = Kek })))
        {
            Assert.Equal(HttpStatusCode.OK, await MeAsync(sealedApp, token));
            var keys = await KeysAsync(sealedApp);
            Assert.NotEmpty(keys);
            Assert.All(keys, k => Assert.True(SigningKeyProtection.IsSealed(k.Material)));
            var signing = keys.First(k => k.Use == SigningKey.Signing);
            using var rsa = RSA.Create();
            Assert.ThrowsAny<CryptographicException>(() => rsa.ImportPkcs8PrivateKey(signing.Material, out _));
        }

        await using var withoutKey = new AgentryApp(Settings.Sqlite(file));
        var refused = await withoutKey.Client().PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = AgentryApp.AdminEmail, ["password"] = AgentryApp.AdminPassword,
        }));
        Assert.False(refused.IsSuccessStatusCode, "tokens were issued though the keys could not be opened");
    }

    [Fact]
    public void A_sealed_key_opens_only_with_its_key_encryption_key_and_in_its_own_row()
    {
        var kek = SigningKeyProtection.ParseKey(Kek)!;
        var material = RandomNumberGenerator.GetBytes(32);
        var sealedMaterial = SigningKeyProtection.Seal(material, "kid-1", kek);

        Assert.Equal(material, SigningKeyProtection.Open(sealedMaterial, "kid-1", kek));
        Assert.Throws<InvalidOperationException>(() => SigningKeyProtection.Open(sealedMaterial, "kid-2", kek));
        Assert.Throws<InvalidOperationException>(() => SigningKeyProtection.Open(sealedMaterial, "kid-1", RandomNumberGenerator.GetBytes(32)));
        Assert.Throws<InvalidOperationException>(() => SigningKeyProtection.Open(sealedMaterial, "kid-1", null));
        Assert.Null(SigningKeyProtection.ParseKey(Convert.ToBase64String(new byte[16])));
    }

    private static async Task<List<SigningKey>> KeysAsync(AgentryApp app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().SigningKeys.AsNoTracking().ToListAsync();
    }

    private static async Task<HttpStatusCode> MeAsync(AgentryApp app, string token)
    {
        var client = app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (await client.GetAsync("/api/v1/me")).StatusCode;
    }
}
