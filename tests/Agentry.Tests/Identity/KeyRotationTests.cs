using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.Identity;

public sealed class KeyRotationTests
{
    [Fact]
    public async Task Signing_keys_rotate_on_schedule_and_tokens_of_the_previous_key_keep_working()
    {
        await using var app = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Tokens:SigningKeyRotation"] = "00:00:02",
            ["Agentry:Tokens:KeyRefreshInterval"] = "00:00:00.2",
        });
        var client = app.Client();
        var first = await AccessTokenAsync(client);
        var firstKid = KeyId(first);

        string? rotated = null;
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            rotated = await AccessTokenAsync(client);
            return KeyId(rotated) != firstKid;
        }, TimeSpan.FromSeconds(15)), "no new signing key took over");

        var jwks = JsonDocument.Parse(await client.GetStringAsync("/.well-known/jwks")).RootElement.GetProperty("keys")
            .EnumerateArray().Select(k => k.GetProperty("kid").GetString()).ToList();
        Assert.Contains(KeyId(rotated!), jwks);
        Assert.Contains(firstKid, jwks);
        Assert.Equal(HttpStatusCode.OK, await MeAsync(app, first));
        Assert.Equal(HttpStatusCode.OK, await MeAsync(app, rotated!));
    }

    private static async Task<string> AccessTokenAsync(HttpClient client) =>
        (await AgentryApp.RequestTokensAsync(client, AgentryApp.AdminEmail, AgentryApp.AdminPassword)).GetProperty("access_token").GetString()!;

    private static async Task<HttpStatusCode> MeAsync(AgentryApp app, string token)
    {
        var client = app.Client();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (await client.GetAsync("/api/v1/me")).StatusCode;
    }

    private static string KeyId(string jwt)
    {
        var header = jwt.Split('.')[0].Replace('-', '+').Replace('_', '/');
        header += new string('=', (4 - header.Length % 4) % 4);
        return JsonDocument.Parse(Encoding.UTF8.GetString(Convert.FromBase64String(header))).RootElement.GetProperty("kid").GetString()!;
    }
}
