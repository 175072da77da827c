using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Agentry.Tests.Infrastructure;
using Microsoft.Data.Sqlite;

namespace Agentry.Tests.Hosting;

/// <summary>The shipped program as an operator runs it: settings, secrets, verbs, logs and signals.</summary>
public sealed class ProcessTests
{
    [Theory]
    [InlineData("Agentry__Storage__Provider", "mysql", "Agentry:Storage:Provider")]
    [InlineData("Agentry__Storage__Provider", "postgres", "ConnectionStrings:Agentry")]
    [InlineData("Agentry__Storage__MigrateOnStart", "maybe", "Agentry:Storage:MigrateOnStart")]
    [InlineData("Agentry__Hosting__MaxRequestBodyBytes", "12", "Agentry:Hosting:MaxRequestBodyBytes")]
    [InlineData("Agentry__Hosting__CorsOrigins__0", "*", "Agentry:Hosting:CorsOrigins")]
    [InlineData("Agentry__Egress__AllowedNetworks__0", "10.0.0.0/99", "Agentry:Egress:AllowedNetworks")]
    [InlineData("Agentry__RateLimits__Api__Burst", "0", "Agentry:RateLimits:Api:Burst")]
    [InlineData("Agentry__Tokens__KeyEncryptionKey", "dG9vIHNob3J0", "Agentry:Tokens:KeyEncryptionKey")]
    [InlineData("Agentry__RateLimits__SignIn__Period", "00:00:00", "Agentry:RateLimits:SignIn:Period")]
    [InlineData("Agentry__ExternalIdentity__Authority", "https://idp.example/", "Agentry:ExternalIdentity:Audience")]
    [InlineData("Agentry__Consul__Address", "consul:8500", "Agentry:Consul:Address")]
    [InlineData("Agentry__Consul__DeregisterCriticalAfter", "00:00:10", "Agentry:Consul:DeregisterCriticalAfter")]
    public async Task A_bad_setting_stops_start_up_with_one_line_naming_the_key(string variable, string value, string key)
    {
        var directory = TempFiles.Directory();
        await using var agentry = AgentryProcess.Start(directory, new Dictionary<string, string> { [variable] = value }, "--urls", $"http://127.0.0.1:{RedisProcess.FreePort()}");

        var exitCode = await agentry.WaitForExitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(2, exitCode);
        var line = Assert.Single(agentry.Stderr, l => l.Length > 0);
        Assert.StartsWith("agentry: configuration error:", line);
        Assert.Contains(key, line);
    }

    [Fact]
    public async Task Without_a_configured_password_the_administrator_gets_a_one_time_password_in_the_log()
    {
        var port = RedisProcess.FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        await using var agentry = AgentryProcess.Start(TempFiles.Directory(), new Dictionary<string, string> { ["Agentry__Bootstrap__AdminPassword"] = "" }, "--urls", baseAddress.ToString());
        await agentry.WaitUntilHealthyAsync(baseAddress, TimeSpan.FromSeconds(30));

        // The bootstrap runs once the server listens.
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(agentry.Stdout.Any(l => l.Contains("one-time password"))), TimeSpan.FromSeconds(15)));
        var line = JsonDocument.Parse(Assert.Single(agentry.Stdout, l => l.Contains("one-time password"))).RootElement;
        var password = line.GetProperty("State").GetProperty("Password").GetString()!;
        Assert.Equal(24, password.Length);
        using var client = new HttpClient { BaseAddress = baseAddress };
        await AgentryApp.RequestTokensAsync(client, AgentryApp.AdminEmail, password);
    }

    [Fact]
    public async Task The_migrate_verb_applies_migrations_and_exits()
    {
        var directory = TempFiles.Directory();
        var database = Path.Combine(directory, "migrated.db");
        await using var agentry = AgentryProcess.Start(directory, new Dictionary<string, string> { ["ConnectionStrings__Agentry"] = $"Data Source={database}" }, "migrate");

        Assert.Equal(0, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(60)));

        await using var connection = new SqliteConnection($"Data Source={database}");
        await connection.OpenAsync();
        await using var command = new SqliteCommand("SELECT count(*) FROM sqlite_master WHERE name = 'workspaces'", connection);
        Assert.Equal(1L, await command.ExecuteScalarAsync());
        await using var journal = new SqliteCommand("PRAGMA journal_mode", connection);
        Assert.Equal("wal", await journal.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Runs_on_settings_from_secret_files_logs_json_with_trace_ids_and_drains_requests_on_SIGTERM()
    {
        var directory = TempFiles.Directory();
        var secrets = Directory.CreateDirectory(Path.Combine(directory, "secrets")).FullName;
        var database = Path.Combine(directory, "from-secret.db");
        await File.WriteAllTextAsync(Path.Combine(secrets, "ConnectionStrings__Agentry"), $"Data Source={database}");
        var port = RedisProcess.FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        await using var agentry = AgentryProcess.Start(directory, new Dictionary<string, string> { ["AGENTRY_SECRETS_DIR"] = secrets }, "--urls", baseAddress.ToString());
        await agentry.WaitUntilHealthyAsync(baseAddress, TimeSpan.FromSeconds(30));

        Assert.True(File.Exists(database), "the connection string from the secret file was not used");
        Assert.False(Directory.Exists(Path.Combine(directory, "data")));

        // A rejected request is logged as JSON carrying the trace id the client got.
        using var client = await AgentryProcess.AdminClientAsync(baseAddress);
        var rejected = await client.PostAsync("/api/v1/workspaces", new StringContent("{oops", Encoding.UTF8, "application/json"));
        var traceParent = JsonDocument.Parse(await rejected.Content.ReadAsStringAsync()).RootElement.GetProperty("traceId").GetString()!;
        var traceId = traceParent.Split('-')[1];
        const string handler = "Agentry.Hosting.ApiExceptionHandler";
        Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(agentry.Stdout.Any(l => l.Contains(traceId) && l.Contains(handler))), TimeSpan.FromSeconds(5)),
            "no log line of the exception handler carries the trace id");
        var logLine = JsonDocument.Parse(agentry.Stdout.First(l => l.Contains(traceId) && l.Contains(handler))).RootElement;
        Assert.Equal("Information", logLine.GetProperty("LogLevel").GetString());
        Assert.Contains(logLine.GetProperty("Scopes").EnumerateArray(), s => s.TryGetProperty("TraceId", out var t) && t.GetString() == traceId);

        // A request in flight when SIGTERM arrives still completes; then the process exits cleanly.
        var body = Encoding.UTF8.GetBytes("""{"name":"in flight","slug":"in-flight"}""");
        using var socket = new TcpClient();
        await socket.ConnectAsync("127.0.0.1", port);
        var stream = socket.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"POST /api/v1/workspaces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {client.DefaultRequestHeaders.Authorization}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"));
        await stream.WriteAsync(body.AsMemory(0, 10));
        await stream.FlushAsync();
        await Task.Delay(300);
        agentry.Terminate();
        await Task.Delay(700);
        Assert.False(agentry.HasExited, "the process exited with a request in flight");
        await stream.WriteAsync(body.AsMemory(10));
        var response = new byte[4096];
        var read = await stream.ReadAsync(response);
        Assert.StartsWith("HTTP/1.1 201", Encoding.ASCII.GetString(response, 0, read));
        Assert.Equal(0, await agentry.WaitForExitAsync(TimeSpan.FromSeconds(20)));
    }
}
