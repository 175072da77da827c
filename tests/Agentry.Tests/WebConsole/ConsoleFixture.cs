using System.Diagnostics;
using System.Text.Json;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;
using Agentry.Tests.Models;
using Agentry.Tests.Tasks;

namespace Agentry.Tests.WebConsole;

/// <summary>
/// One real Agentry process for the web console's end-to-end tests (the shipped program on SQLite, the tiny GGUF model
/// as <c>local/tiny</c>, the embedded knowledge stack, webhooks to loopback), a webhook receiver, and the runner of the
/// browser scenarios in <c>tests/e2e</c>: Node with playwright-core driving Debian's chromium, headless.
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime
{
    /// <summary>The tiny GGUF model the console chats with.</summary>
    public const string ChatModel = "local/tiny";

    /// <summary>
    /// The same weights given an 8,192-token window, so a reply runs to 4,096 tokens (<c>Agentry:Chat:MaxReplyTokens</c>;
    /// <see cref="ChatModel"/>'s stay at half its 256-token window): long enough to stop, or to reload the page during.
    /// </summary>
    public const string LongChatModel = "long/tiny";

    private AgentryProcess _node = null!;

    public Uri BaseAddress => _node.BaseAddress!;

    public WebhookReceiver Receiver { get; private set; } = null!;

    /// <summary>Where each scenario's screenshots go: the test results directory, so CI keeps them.</summary>
    public static string ScreenshotDirectory => Path.Combine(
        Environment.GetEnvironmentVariable("AGENTRY_TEST_RESULTS_DIR") is { Length: > 0 } results ? results : Path.Combine(Checkout.Root, "TestResults"),
        "console-screenshots");

    public async ValueTask InitializeAsync()
    {
        var directory = TempFiles.Directory();
        var model = Path.Combine(directory, "tiny.gguf");
        TinyGguf.Write(model);
        Receiver = await WebhookReceiver.StartAsync();
        _node = await AgentryProcess.StartNodeAsync(KnowledgeSettings.SqliteNode(directory)
            .With(TinyModelFixture.LlamaCppSettings(("local", model), ("long", model)))
            .With(new Dictionary<string, string?>
            {
                ["Agentry:Llm:Providers:1:ContextSize"] = "8192",
                ["Agentry:Chat:MaxReplyTokens"] = "4096",
                ["Agentry:RateLimits:Enabled"] = "false",
                ["Agentry:Queue:Heartbeat"] = "00:00:00.500",
            }));
    }

    /// <summary>A client of the node signed in as the bootstrap administrator, for setting up and checking what a scenario did.</summary>
    public Task<HttpClient> AdminClientAsync() => AgentryProcess.AdminClientAsync(BaseAddress);

    /// <summary>
    /// Runs <c>tests/e2e/{scenario}</c> against the node and returns what it printed on its <c>RESULT</c> line; a
    /// failing scenario fails the test with its output (it keeps a screenshot of the page it failed on).
    /// </summary>
    public async Task<JsonElement> RunScenarioAsync(string scenario, IReadOnlyDictionary<string, string>? environment = null, ITestOutputHelper? output = null)
    {
        var start = new ProcessStartInfo(Playwright.Node)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.Combine(Checkout.Root, "tests", "e2e"),
        };
        start.ArgumentList.Add(Path.Combine(Checkout.Root, "tests", "e2e", scenario));
        start.Environment["AGENTRY_URL"] = BaseAddress.ToString().TrimEnd('/');
        start.Environment["AGENTRY_EMAIL"] = AgentryApp.AdminEmail;
        start.Environment["AGENTRY_PASSWORD"] = AgentryApp.AdminPassword;
        start.Environment["AGENTRY_SCREENSHOTS"] = ScreenshotDirectory;
        start.Environment["AGENTRY_PLAYWRIGHT"] = Playwright.Core;
        start.Environment["AGENTRY_CHROMIUM"] = Playwright.Chromium;
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
        }
        var (text, errors) = (await stdout, await stderr);
        output?.WriteLine(text);
        Assert.True(process.ExitCode == 0,
            $"{scenario} failed (exit code {process.ExitCode}):\n{text}\n{errors}\nnode stderr (last 30 lines):\n{string.Join('\n', _node.Stderr.TakeLast(30))}");
        var result = text.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        return JsonDocument.Parse(result?["RESULT ".Length..] ?? "{}").RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        await _node.DisposeAsync();
        await Receiver.DisposeAsync();
    }
}

/// <summary>playwright-core and chromium as scripts/test.sh installs them; missing is a failure in CI and a skip elsewhere.</summary>
public static class Playwright
{
    public static string Node => Require("AGENTRY_TEST_NODE");

    public static string Core => Require("AGENTRY_TEST_PLAYWRIGHT");

    public static string Chromium => Require("AGENTRY_TEST_CHROMIUM");

    private static string Require(string variable)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value && Path.Exists(value))
        {
            return value;
        }
        var message = $"The browser test tools are missing ({variable} is not set or does not exist); run ./scripts/test.sh, which installs them.";
        if (Environment.GetEnvironmentVariable("CI") == "true")
        {
            throw new InvalidOperationException(message);
        }
        Assert.Skip(message);
        return "";
    }
}
