using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Tasks;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Knowledge;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Agentry.Tests.Operations;

/// <summary>
/// The round trip both providers pass: data made through the API, a backup taken by the <c>backup</c> verb while the
/// node keeps writing, changes after it, the <c>restore</c> verb with the node stopped, and a node started again that
/// has exactly what the backup held.
/// </summary>
internal static class BackupRoundTrip
{
    public static async Task RunAsync(
        Dictionary<string, string?> settings, string file,
        IReadOnlyDictionary<string, string>? backupEnvironment = null, IReadOnlyDictionary<string, string>? restoreEnvironment = null)
    {
        Holdings held;
        List<Guid> committedBefore;
        Guid later;
        await using (var app = new AgentryApp(settings))
        {
            held = await Holdings.CreateAsync(app);
            await using (var writer = new WorkspaceWriter(await app.AdminClientAsync()))
            {
                Assert.True(await HttpAssertions.EventuallyAsync(() => Task.FromResult(writer.Written.Count >= 3), TimeSpan.FromSeconds(30)), "the writer wrote nothing");
                committedBefore = [.. writer.Written];

                var backup = (await Verb.RunAsync(settings, backupEnvironment ?? new Dictionary<string, string>(), "backup", file)).Exited(0);

                Assert.True(writer.Written.Count > committedBefore.Count, "the node stopped writing during the backup");
                Assert.Contains(backup.Said, l => l.StartsWith("agentry: backed up the", StringComparison.Ordinal) && l.Contains(file, StringComparison.Ordinal));
            }
            Assert.True(File.Exists(file));
            Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(file)!, "*.partial"));

            // Changes after the backup, which the restore takes back.
            later = await app.CreateWorkspaceAsync();
            Assert.Equal(HttpStatusCode.NoContent, (await held.Client.DeleteAsync($"/api/v1/agents/{held.Agent}")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await held.Client.GetAsync($"/api/v1/agents/{held.Agent}")).StatusCode);
        }

        var restore = (await Verb.RunAsync(settings, restoreEnvironment ?? new Dictionary<string, string>(), "restore", file)).Exited(0);
        Assert.Contains(restore.Said, l => l.StartsWith("agentry: restored the", StringComparison.Ordinal));

        await using var again = new AgentryApp(settings);
        await held.AssertPresentAsync(again);
        await using var scope = again.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        Assert.False(await db.Workspaces.AnyAsync(w => w.Id == later), "a workspace made after the backup survived the restore");
        Assert.Equal(committedBefore.Count, await db.Workspaces.CountAsync(w => committedBefore.Contains(w.Id)));
    }
}

/// <summary>A workspace with an agent, a task waiting for tomorrow and a collection with an ingested document, and a member's client.</summary>
internal sealed record Holdings(HttpClient Client, (Guid Id, string Email, string Password) User, Guid Agent, Guid Task, Guid Collection, Guid Document)
{
    public static async Task<Holdings> CreateAsync(AgentryApp app)
    {
        var user = await app.CreateUserAsync(await app.CreateWorkspaceAsync(), Roles.Admin);
        var client = await app.SignedInClientAsync(user.Email, user.Password);
        var agent = (await (await client.PostJsonAsync("/api/v1/agents", new { name = "kept", kind = "webhook", webhook = new { url = "https://example.com/hook" } }))
            .ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var task = (await (await client.PostJsonAsync("/api/v1/tasks", new { agentId = agent, input = new { }, runAt = DateTime.UtcNow.AddDays(1) }))
            .ReadAsync<TaskResponse>(HttpStatusCode.Accepted)).Id;
        var collection = (await client.CreateCollectionAsync("kept")).Id;
        var document = await client.AddAsync(collection, "lighthouses.txt", "Lighthouse keepers trimmed the lamp's wick every night before dusk.");
        Assert.Equal(DocumentStatuses.Ready, (await client.SettledAsync(collection, document.Id)).Status);
        return new Holdings(client, user, agent, task, collection, document.Id);
    }

    public async Task AssertPresentAsync(AgentryApp app)
    {
        var client = await app.SignedInClientAsync(User.Email, User.Password);
        Assert.Equal("kept", (await (await client.GetAsync($"/api/v1/agents/{Agent}")).ReadAsync<JsonElement>()).GetProperty("name").GetString());
        Assert.Equal("queued", (await (await client.GetAsync($"/api/v1/tasks/{Task}")).ReadAsync<TaskResponse>()).Status);
        var document = await (await client.GetAsync($"{KnowledgeCalls.Url}/{Collection}/documents/{Document}")).ReadAsync<DocumentResponse>();
        Assert.Equal(DocumentStatuses.Ready, document.Status);
        var hits = (await client.SearchAsync(Collection, "lighthouse wick", SearchModes.Keyword)).Results;
        Assert.Equal(Document, Assert.Single(hits).DocumentId);
    }
}

/// <summary>Creates workspaces one after another until disposed: a node that keeps writing.</summary>
internal sealed class WorkspaceWriter : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _writing;
    private readonly ConcurrentQueue<Guid> _written = new();

    public WorkspaceWriter(HttpClient admin) => _writing = WriteAsync(admin);

    /// <summary>The workspaces whose creation was answered 201, in order.</summary>
    public IReadOnlyCollection<Guid> Written => _written;

    private async Task WriteAsync(HttpClient admin)
    {
        while (!_stop.IsCancellationRequested)
        {
            var slug = $"w-{Guid.NewGuid():N}"[..20];
            var response = await admin.PostAsJsonAsync("/api/v1/workspaces", new { name = slug, slug }, CancellationToken.None);
            _written.Enqueue((await response.ReadAsync<JsonElement>(HttpStatusCode.Created)).GetProperty("id").GetGuid());
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _writing;
        _stop.Dispose();
    }
}
