using System.Net;
using System.Text.Json;
using Agentry.Tests.Infrastructure;

namespace Agentry.Tests.WebConsole;

/// <summary>
/// The console's session over plain HTTP, as a browser sends it: the first-party client's tokens travel only in
/// cookies, unsafe calls and refreshes need the double-submit CSRF header, and sign-out revokes the session.
/// </summary>
public sealed class ConsoleSessionTests : IAsyncLifetime
{
    private readonly AgentryApp _app = AgentryApp.Sqlite(new Dictionary<string, string?> { ["Agentry:RateLimits:Enabled"] = "false" });

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task The_token_response_sets_cookies_instead_of_returning_tokens()
    {
        using var client = _app.Client();
        var (response, jar) = await SignInAsync(client);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("access_token", body, StringComparison.Ordinal);
        Assert.DoesNotContain("refresh_token", body, StringComparison.Ordinal);
        var cookies = response.Headers.GetValues("Set-Cookie").ToList();
        Assert.Contains(cookies, c => c.StartsWith("agentry_access=", StringComparison.Ordinal) && c.Contains("httponly") && c.Contains("samesite=strict") && c.Contains("path=/;"));
        Assert.Contains(cookies, c => c.StartsWith("agentry_refresh=", StringComparison.Ordinal) && c.Contains("httponly") && c.Contains("path=/connect"));
        Assert.Contains(cookies, c => c.StartsWith("agentry_csrf=", StringComparison.Ordinal) && !c.Contains("httponly"));
        Assert.Equal(3, jar.Count);

        // Other clients are unchanged: the CLI still gets its tokens in the body.
        var cli = await AgentryApp.RequestTokensAsync(client, AgentryApp.AdminEmail, AgentryApp.AdminPassword, "offline_access");
        Assert.Equal(JsonValueKind.String, cli.GetProperty("access_token").ValueKind);
    }

    [Fact]
    public async Task The_access_cookie_authenticates_reads_and_unsafe_calls_need_the_csrf_header()
    {
        using var client = _app.Client();
        var (_, jar) = await SignInAsync(client);
        using var me = Request(HttpMethod.Get, "/api/v1/me", jar, csrf: false);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(me)).StatusCode);

        using var forged = Request(HttpMethod.Post, "/api/v1/agents", jar, csrf: false, json: new { name = "forged", kind = "tool", tool = "x__y" });
        var refused = await (await client.SendAsync(forged)).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        Assert.Contains("X-Agentry-Csrf", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);

        using var wrong = Request(HttpMethod.Post, "/api/v1/agents", jar, csrf: false, json: new { name = "forged", kind = "tool", tool = "x__y" });
        wrong.Headers.Add("X-Agentry-Csrf", "not-the-cookie");
        Assert.Equal(HttpStatusCode.Forbidden, (await client.SendAsync(wrong)).StatusCode);

        using var made = Request(HttpMethod.Post, "/api/v1/agents", jar, csrf: true, json: new { name = "made", kind = "tool", tool = "x__y" });
        Assert.Equal(HttpStatusCode.Created, (await client.SendAsync(made)).StatusCode);
    }

    [Fact]
    public async Task A_refresh_takes_the_refresh_token_from_its_cookie_only_with_the_csrf_header()
    {
        using var client = _app.Client();
        var (_, jar) = await SignInAsync(client);
        var before = jar["agentry_access"];

        using var noCsrf = Request(HttpMethod.Post, "/connect/token", jar, csrf: false, form: new() { ["grant_type"] = "refresh_token", ["client_id"] = "agentry-console" });
        noCsrf.Headers.Add("X-Agentry-Console", "1");
        var refused = await client.SendAsync(noCsrf);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("X-Agentry-Csrf", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var refresh = Request(HttpMethod.Post, "/connect/token", jar, csrf: true, form: new() { ["grant_type"] = "refresh_token", ["client_id"] = "agentry-console" });
        refresh.Headers.Add("X-Agentry-Console", "1");
        var renewed = await client.SendAsync(refresh);
        Assert.Equal(HttpStatusCode.OK, renewed.StatusCode);
        Assert.DoesNotContain("_token", await renewed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Absorb(renewed, jar);
        Assert.NotEqual(before, jar["agentry_access"]);
        using var me = Request(HttpMethod.Get, "/api/v1/me", jar, csrf: false);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(me)).StatusCode);
    }

    [Fact]
    public async Task A_sign_in_without_the_console_header_is_refused()
    {
        using var client = _app.Client();
        var response = await client.PostAsync("/connect/token", new FormUrlEncodedContent(Credentials()));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("X-Agentry-Console", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task Signing_out_revokes_the_session_and_clears_the_cookies()
    {
        using var client = _app.Client();
        var (_, jar) = await SignInAsync(client);
        var session = new Dictionary<string, string>(jar);

        using var signOut = Request(HttpMethod.Post, "/connect/revoke", jar, csrf: true, form: new() { ["client_id"] = "agentry-console" });
        signOut.Headers.Add("X-Agentry-Console", "1");
        var response = await client.SendAsync(signOut);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var cleared = response.Headers.GetValues("Set-Cookie").ToList();
        Assert.All(["agentry_access", "agentry_refresh", "agentry_csrf"], name =>
            Assert.Contains(cleared, c => c.StartsWith(name + "=;", StringComparison.Ordinal) && c.Contains("expires=Thu, 01 Jan 1970")));

        // The old cookies, kept by an attacker, no longer work: neither the access token nor the refresh token.
        Assert.True(await HttpAssertions.EventuallyAsync(async () =>
        {
            using var me = Request(HttpMethod.Get, "/api/v1/me", session, csrf: false);
            return (await client.SendAsync(me)).StatusCode == HttpStatusCode.Unauthorized;
        }, TimeSpan.FromSeconds(5)));
        using var refresh = Request(HttpMethod.Post, "/connect/token", session, csrf: true, form: new() { ["grant_type"] = "refresh_token", ["client_id"] = "agentry-console" });
        refresh.Headers.Add("X-Agentry-Console", "1");
        Assert.Equal(HttpStatusCode.BadRequest, (await client.SendAsync(refresh)).StatusCode);
    }

    [Fact]
    public async Task The_console_is_served_with_a_policy_that_allows_only_its_own_scripts_and_the_root_leads_to_it()
    {
        using var client = _app.Client();
        var root = await client.GetAsync("/");
        Assert.Equal((HttpStatusCode.Redirect, "/console/"), (root.StatusCode, root.Headers.Location?.OriginalString));
        var page = await client.GetAsync("/console/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<script type=\"module\" src=\"app.js\"></script>", html, StringComparison.Ordinal);
        var policy = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self';", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", policy, StringComparison.Ordinal);
        Assert.Equal("no-cache", page.Headers.CacheControl?.ToString());
        var script = await client.GetAsync("/console/app.js");
        Assert.Equal("text/javascript", script.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/console/missing.js")).StatusCode);
    }

    private static Dictionary<string, string> Credentials() => new()
    {
        ["grant_type"] = "password",
        ["client_id"] = "agentry-console",
        ["username"] = AgentryApp.AdminEmail,
        ["password"] = AgentryApp.AdminPassword,
        ["scope"] = "offline_access",
    };

    private static async Task<(HttpResponseMessage Response, Dictionary<string, string> Jar)> SignInAsync(HttpClient client)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = new FormUrlEncodedContent(Credentials()) };
        request.Headers.Add("X-Agentry-Console", "1");
        var response = await client.SendAsync(request);
        var jar = new Dictionary<string, string>();
        Absorb(response, jar);
        return (response, jar);
    }

    /// <summary>What a browser keeps of a response's Set-Cookie headers (names and values; a cleared cookie is dropped).</summary>
    private static void Absorb(HttpResponseMessage response, Dictionary<string, string> jar)
    {
        foreach (var header in response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [])
        {
            var pair = header.Split(';')[0].Split('=', 2);
            if (pair[1].Length == 0)
            {
                jar.Remove(pair[0]);
            }
            else
            {
                jar[pair[0]] = pair[1];
            }
        }
    }

    private static HttpRequestMessage Request(HttpMethod method, string url, Dictionary<string, string> jar, bool csrf, object? json = null, Dictionary<string, string>? form = null)
    {
        var request = new HttpRequestMessage(method, url);
        request.Headers.Add("Cookie", string.Join("; ", jar.Select(c => $"{c.Key}={c.Value}")));
        if (csrf && jar.TryGetValue("agentry_csrf", out var token))
        {
            request.Headers.Add("X-Agentry-Csrf", token);
        }
        request.Content = form is not null ? new FormUrlEncodedContent(form) : json is not null ? HttpAssertions.Json(json) : null;
        return request;
    }
}
