using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Chat;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Usage;

public sealed class UsageDrainTests
{
    [Fact]
    public async Task Records_still_queued_at_a_graceful_stop_are_written_before_the_node_ends()
    {
        // An hour between batches and batches larger than the test makes: only the drain at the stop writes.
        var settings = Settings.Sqlite(TempFiles.Database()).With(UsageSettings.For(ChatSettings.NewModelFile())).With(new Dictionary<string, string?>
        {
            ["Agentry:Usage:FlushInterval"] = "01:00:00",
            ["Agentry:Usage:BatchSize"] = "10000",
        });
        Guid workspace;
        var app = new AgentryApp(settings);
        await using (app)
        {
            workspace = await app.CreateWorkspaceAsync();
            var key = app.KeyClient(await AgentryApp.CreateApiKeyAsync(await app.AdminClientAsync(), workspace, ApiKeyScopes.Chat));
            for (var i = 0; i < 3; i++)
            {
                var response = await key.PostJsonAsync("/v1/chat/completions", new { model = "local/tiny", messages = new[] { new { role = "user", content = $"hello {i}" } }, max_tokens = 3 });
                await response.ReadAsync<System.Text.Json.JsonElement>();
            }
            Assert.Equal(0, await CountAsync(app, workspace));
        }

        await using var restarted = new AgentryApp(settings);
        Assert.Equal(3, await CountAsync(restarted, workspace));
    }

    private static async Task<int> CountAsync(AgentryApp app, Guid workspace)
    {
        await using var scope = app.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().UsageRecords
            .CountAsync(r => r.WorkspaceId == workspace && r.PromptTokens > 0 && r.CompletionTokens == 3);
    }
}
