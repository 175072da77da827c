namespace Agentry.Tests.WebConsole;

/// <summary>
/// The web console driven in Chromium against a real node: each test runs one scenario of <c>tests/e2e</c> and then
/// checks through the API that what the browser did really happened. One file per area (partial class).
/// </summary>
public sealed partial class ConsoleEndToEndTests(ConsoleFixture fixture, ITestOutputHelper output) : IClassFixture<ConsoleFixture>
{
    [Fact]
    public async Task Signing_in_keeps_the_tokens_in_http_only_cookies_and_signing_out_revokes_them()
    {
        var result = await fixture.RunScenarioAsync("signin.mjs", output: output);
        Assert.Equal(401, result.GetProperty("revokedStatus").GetInt32());
    }
}
