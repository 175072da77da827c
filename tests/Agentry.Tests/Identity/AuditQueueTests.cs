using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Identity;

/// <summary>Queued audit events (tool calls): written in batches, seen by the next read on the node, and written on a graceful stop.</summary>
public sealed class AuditQueueTests
{
    [Fact]
    public async Task Queued_events_are_seen_by_the_next_read_and_a_graceful_stop_writes_the_rest()
    {
        var database = TempFiles.Database();
        var settings = Settings.Sqlite(database);
        var app = new AgentryApp(settings);
        var admin = await app.AdminClientAsync();
        var workspace = await app.CreateWorkspaceAsync();

        await QueueAsync(app, workspace, "read-after-queue");
        var read = await (await admin.GetAsync($"/api/v1/audit?workspaceId={workspace}&action=tool.call")).ReadAsync<Page<AuditEventResponse>>();
        Assert.Equal("read-after-queue", Assert.Single(read.Items).Target);

        // Many at once, then a stop before the writer's interval is over: none is lost.
        for (var i = 0; i < 600; i++)
        {
            await QueueAsync(app, workspace, $"burst-{i}");
        }
        await app.DisposeAsync();

        await using var reopened = new AgentryApp(settings);
        await using var scope = reopened.Services.CreateAsyncScope();
        var targets = await scope.ServiceProvider.GetRequiredService<AppDbContext>().AuditEvents.AsNoTracking()
            .Where(e => e.WorkspaceId == workspace && e.Action == "tool.call").Select(e => e.Target).ToListAsync();
        Assert.Equal(601, targets.Count);
        Assert.Equal(601, targets.Distinct().Count());
    }

    private static async Task QueueAsync(AgentryApp app, Guid workspace, string target)
    {
        await using var scope = app.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<AuditTrail>().QueueAsync(
            new AuditActor(null, null, "test"), "tool.call", AuditOutcomes.Success, workspace, target, new { via = "test" });
    }
}
