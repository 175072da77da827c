using System.Net;
using System.Net.Http.Json;
using System.Text;
using Agentry.Data;
using Agentry.Identity;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Agentry.Tests.Identity;

/// <summary>The audit log through HTTP, the same on every storage provider.</summary>
public abstract class AuditContract(StorageFixture fixture)
{
    private const string Url = "/api/v1/audit";
    private const string ProxiedClient = "203.0.113.7";
    private readonly AgentryApp _app = fixture.App;
    private readonly HttpClient _admin = fixture.Client;

    [Fact]
    public async Task Sign_ins_are_recorded_with_ip_and_user_agent_and_never_the_password()
    {
        var (id, email, password) = await _app.CreateUserAsync();
        var wrongPassword = "wrong-" + Guid.NewGuid().ToString("N");
        var userAgent = "AuditTest/1.0 (" + Guid.NewGuid().ToString("N") + ")";

        Assert.Equal(HttpStatusCode.BadRequest, (await SignInAsync(email, wrongPassword, userAgent)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SignInAsync(email, password, userAgent)).StatusCode);

        var response = await _admin.GetAsync($"{Url}?actorUserId={id}");
        var text = await response.Content.ReadAsStringAsync();
        var events = (await response.ReadAsync<Page<AuditEventResponse>>()).Items;
        Assert.Equal(new[] { AuditActions.SignInSucceeded, AuditActions.SignInFailed }, events.Select(e => e.Action));
        Assert.Equal(new[] { AuditOutcomes.Success, AuditOutcomes.Failure }, events.Select(e => e.Outcome));
        Assert.All(events, e =>
        {
            Assert.Equal((id, email, AuditTargets.User(id)), (e.ActorUserId, e.ActorName, e.Target));
            Assert.Equal((ProxiedClient, userAgent), (e.Ip, e.UserAgent)); // the address the trusted proxy saw
            Assert.Null(e.WorkspaceId);
        });
        Assert.Equal("wrong_password", events[1].Detail!.Value.GetProperty("reason").GetString());
        Assert.DoesNotContain(wrongPassword, text);
        Assert.DoesNotContain(password, text);
    }

    [Fact]
    public async Task A_sign_in_with_an_unknown_email_names_the_email_and_no_user()
    {
        var email = $"nobody-{Guid.NewGuid():N}@agentry.test";
        using var client = _app.Client();

        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync("/connect/token", TokenRequest(email, "some-password-1"))).StatusCode);

        var failed = await ListAsync($"action={AuditActions.SignInFailed}&outcome=failure");
        var attempt = Assert.Single(failed, e => e.ActorName == email);
        Assert.Null(attempt.ActorUserId);
        Assert.Equal("127.0.0.1", attempt.Ip);
        Assert.Equal("unknown_email", attempt.Detail!.Value.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_role_change_is_recorded_with_actor_target_and_both_roles()
    {
        var me = await (await _admin.GetAsync("/api/v1/me")).ReadAsync<MeResponse>();
        var workspace = await CreateWorkspaceAsync();
        var (userId, _, _) = await _app.CreateUserAsync();

        (await _admin.PutAsJsonAsync($"/api/v1/workspaces/{workspace}/members/{userId}", new { role = Roles.Member })).EnsureSuccessStatusCode();
        (await _admin.PutAsJsonAsync($"/api/v1/workspaces/{workspace}/members/{userId}", new { role = Roles.Admin })).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.NoContent, (await _admin.DeleteAsync($"/api/v1/workspaces/{workspace}/members/{userId}")).StatusCode);

        var events = await ListAsync($"workspaceId={workspace}&action=member.");
        Assert.Equal(new[] { AuditActions.MemberRemoved, AuditActions.MemberRoleChanged, AuditActions.MemberAdded }, events.Select(e => e.Action));
        var changed = events[1];
        Assert.Equal((me.Id, AgentryApp.AdminEmail, workspace, AuditTargets.User(userId)), (changed.ActorUserId, changed.ActorName, changed.WorkspaceId, changed.Target));
        Assert.Equal((Roles.Member, Roles.Admin),
            (changed.Detail!.Value.GetProperty("from").GetString(), changed.Detail.Value.GetProperty("to").GetString()));
    }

    [Fact]
    public async Task Every_403_an_authenticated_caller_gets_is_recorded_as_permission_denied()
    {
        var workspace = await CreateWorkspaceAsync();
        var (viewerId, email, password) = await _app.CreateUserAsync(workspace, Roles.Viewer);
        using var viewer = await _app.SignedInClientAsync(email, password);

        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.PatchAsync($"/api/v1/workspaces/{workspace}", Json(new { name = "mine now" }))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await viewer.GetAsync("/api/v1/users")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await viewer.GetAsync($"/api/v1/workspaces/{workspace}")).StatusCode);

        var denied = await ListAsync($"actorUserId={viewerId}&action={AuditActions.PermissionDenied}");
        Assert.Equal(2, denied.Count);
        Assert.All(denied, e => Assert.Equal(AuditOutcomes.Denied, e.Outcome));
        Assert.Equal(("GET /api/v1/users", null), (denied[0].Target, denied[0].WorkspaceId));
        Assert.Equal(($"PATCH /api/v1/workspaces/{workspace}", workspace), (denied[1].Target, denied[1].WorkspaceId));
        Assert.Empty(await ListAsync($"workspaceId={workspace}&action={AuditActions.WorkspaceUpdated}"));
    }

    [Fact]
    public async Task Filters_select_and_pages_walk_every_event_once_newest_first()
    {
        var workspace = await CreateWorkspaceAsync();
        for (var i = 0; i < 6; i++)
        {
            (await _admin.PatchAsync($"/api/v1/workspaces/{workspace}", Json(new { name = $"name {i}" }))).EnsureSuccessStatusCode();
        }

        var seen = new List<AuditEventResponse>();
        string? cursor = null;
        do
        {
            var page = await (await _admin.GetAsync($"{Url}?workspaceId={workspace}&limit=3" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}")))
                .ReadAsync<Page<AuditEventResponse>>();
            Assert.InRange(page.Items.Count, 1, 3);
            seen.AddRange(page.Items);
            cursor = page.NextCursor;
        }
        while (cursor is not null && seen.Count < 100);

        Assert.Equal(7, seen.Count);
        Assert.Equal(7, seen.Select(e => e.Id).Distinct().Count());
        Assert.Equal(seen.OrderByDescending(e => e.At).Select(e => e.Id), seen.Select(e => e.Id));
        Assert.Equal(AuditActions.WorkspaceCreated, seen[^1].Action);
        Assert.Equal(6, (await ListAsync($"workspaceId={workspace}&action={AuditActions.WorkspaceUpdated}")).Count);
        Assert.Equal(7, (await ListAsync($"workspaceId={workspace}&action=workspace.")).Count);
        Assert.Empty(await ListAsync($"workspaceId={workspace}&outcome=denied"));
        // from is inclusive, to exclusive: the middle event onwards, then everything before it.
        var middle = seen[3].At.ToString("O");
        Assert.Equal(seen.Take(4).Select(e => e.Id), (await ListAsync($"workspaceId={workspace}&from={middle}")).Select(e => e.Id));
        Assert.Equal(seen.Skip(4).Select(e => e.Id), (await ListAsync($"workspaceId={workspace}&to={middle}")).Select(e => e.Id));
    }

    [Fact]
    public async Task Bad_filters_are_400s()
    {
        var problem = await (await _admin.GetAsync($"{Url}?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"))
            .AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        Assert.True(problem.GetProperty("errors").TryGetProperty("from", out _));
        (await (await _admin.GetAsync($"{Url}?outcome=maybe")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("outcome");
        await (await _admin.GetAsync($"{Url}?from=yesterday")).AssertProblemAsync(HttpStatusCode.BadRequest, "bad_request");
        await (await _admin.GetAsync($"{Url}?cursor=not-a-cursor")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
        await (await _admin.GetAsync($"{Url}?limit=201")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var otherSort = new Cursor("name", "x", Guid.CreateVersion7()).Encode();
        await (await _admin.GetAsync($"{Url}?cursor={otherSort}")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
    }

    [Fact]
    public async Task A_workspace_admin_reads_only_their_workspace_and_others_are_refused()
    {
        var mine = await CreateWorkspaceAsync();
        var theirs = await CreateWorkspaceAsync();
        using var workspaceAdmin = await _app.UserClientAsync(mine, Roles.Admin);
        using var member = await _app.UserClientAsync(mine, Roles.Member);

        var events = (await (await workspaceAdmin.GetAsync($"{Url}?workspaceId={mine}")).ReadAsync<Page<AuditEventResponse>>()).Items;
        Assert.Contains(events, e => e.Action == AuditActions.WorkspaceCreated);
        Assert.All(events, e => Assert.Equal(mine, e.WorkspaceId));

        await (await workspaceAdmin.GetAsync($"{Url}?workspaceId={theirs}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        (await (await workspaceAdmin.GetAsync(Url)).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("workspaceId");
        await (await member.GetAsync($"{Url}?workspaceId={mine}")).AssertProblemAsync(HttpStatusCode.Forbidden, "forbidden");
        await (await _app.Client().GetAsync(Url)).AssertProblemAsync(HttpStatusCode.Unauthorized, "unauthorized");
    }

    private async Task<HttpResponseMessage> SignInAsync(string email, string password, string userAgent)
    {
        using var client = _app.Client();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = TokenRequest(email, password) };
        request.Headers.TryAddWithoutValidation("User-Agent", userAgent);
        request.Headers.Add("X-Forwarded-For", ProxiedClient);
        return await client.SendAsync(request);
    }

    private static FormUrlEncodedContent TokenRequest(string email, string password) => new(new Dictionary<string, string>
    {
        ["grant_type"] = "password", ["client_id"] = "agentry-cli", ["username"] = email, ["password"] = password,
    });

    private async Task<IReadOnlyList<AuditEventResponse>> ListAsync(string query) =>
        (await (await _admin.GetAsync($"{Url}?limit=200&{query}")).ReadAsync<Page<AuditEventResponse>>()).Items;

    private async Task<Guid> CreateWorkspaceAsync() =>
        (await (await _admin.PostJsonAsync("/api/v1/workspaces", new { name = "audited", slug = "ws-" + Guid.NewGuid().ToString("N")[..16] }))
            .ReadAsync<WorkspaceResponse>(HttpStatusCode.Created)).Id;

    private static StringContent Json(object body) =>
        new(System.Text.Json.JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}

/// <summary>A real port, behind a trusted proxy on loopback: the client address comes from X-Forwarded-For when sent.</summary>
public sealed class AuditSqliteFixture : SqliteFixture
{
    internal static readonly IReadOnlyDictionary<string, string?> BehindProxy = new Dictionary<string, string?> { ["Agentry:Hosting:TrustedProxies:0"] = "127.0.0.1" };

    protected override IReadOnlyDictionary<string, string?> Extra => BehindProxy;

    protected override bool Kestrel => true;
}

public sealed class AuditPostgresFixture : PostgresFixture
{
    protected override IReadOnlyDictionary<string, string?> Extra => AuditSqliteFixture.BehindProxy;

    protected override bool Kestrel => true;
}

public sealed class SqliteAuditTests(AuditSqliteFixture fixture) : AuditContract(fixture), IClassFixture<AuditSqliteFixture>
{
    /// <summary>Append-only holds in the database file itself, for any client, not only for the API.</summary>
    [Theory]
    [InlineData("""UPDATE audit_events SET "Outcome" = 'success' WHERE "Id" = {0}""")]
    [InlineData("""DELETE FROM audit_events WHERE "Id" = {0}""")]
    [InlineData("""DELETE FROM audit_events""")]
    public async Task The_table_refuses_to_change_or_lose_events(string sql)
    {
        await using var scope = fixture.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var before = await db.AuditEvents.AsNoTracking().OrderBy(e => e.At).FirstAsync(); // the fixture's own sign-in, at least

        var refused = await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => sql.Contains("{0}")
            ? db.Database.ExecuteSqlRawAsync(sql, before.Id)
            : db.Database.ExecuteSqlRawAsync(sql));

        Assert.Contains("append-only", refused.Message);
        var after = await db.AuditEvents.AsNoTracking().SingleAsync(e => e.Id == before.Id);
        Assert.Equal((before.Action, before.Outcome, before.At), (after.Action, after.Outcome, after.At));
    }
}

public sealed class PostgresAuditTests(AuditPostgresFixture fixture) : AuditContract(fixture), IClassFixture<AuditPostgresFixture>
{
    /// <summary>Append-only holds in the database itself, for any client, not only for the API.</summary>
    [Theory]
    [InlineData("""UPDATE audit_events SET "Outcome" = 'success' WHERE "Id" = {0}""")]
    [InlineData("""DELETE FROM audit_events WHERE "Id" = {0}""")]
    [InlineData("""TRUNCATE audit_events""")]
    public async Task The_table_refuses_to_change_or_lose_events(string sql)
    {
        await using var scope = fixture.App.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var before = await db.AuditEvents.AsNoTracking().OrderBy(e => e.At).FirstAsync(); // the fixture's own sign-in, at least

        var refused = await Assert.ThrowsAsync<PostgresException>(() => sql.Contains("{0}")
            ? db.Database.ExecuteSqlRawAsync(sql, before.Id)
            : db.Database.ExecuteSqlRawAsync(sql));

        Assert.Equal(PostgresErrorCodes.RestrictViolation, refused.SqlState);
        Assert.Contains("append-only", refused.MessageText);
        var after = await db.AuditEvents.AsNoTracking().SingleAsync(e => e.Id == before.Id);
        Assert.Equal((before.Action, before.Outcome, before.At), (after.Action, after.Outcome, after.At));
    }
}

public sealed class AuditFailureTests
{
    /// <summary>
    /// An event that cannot be written does not fail the request that caused it (the change is already
    /// committed), but it is not silent either: the error log carries the whole event.
    /// </summary>
    [Fact]
    public async Task A_lost_event_is_logged_in_full_and_the_request_still_succeeds()
    {
        var logs = new CollectingLoggerProvider();
        await using var app = AgentryApp.Sqlite(services: s => s.AddSingleton<ILoggerProvider>(logs));
        using var admin = await app.AdminClientAsync();
        await using (var scope = app.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<AppDbContext>().Database.ExecuteSqlRawAsync("DROP TABLE audit_events");
        }

        var created = await admin.PostJsonAsync("/api/v1/workspaces", new { name = "unaudited", slug = "ws-" + Guid.NewGuid().ToString("N")[..16] });

        var workspace = await created.ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        var logged = Assert.Single(logs.Messages, m => m.StartsWith("Audit event not written: workspace.created", StringComparison.Ordinal));
        Assert.Contains(AuditTargets.Workspace(workspace.Id), logged);
    }

    private sealed class CollectingLoggerProvider : ILoggerProvider, ILogger
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Error;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                Messages.Enqueue(formatter(state, exception));
            }
        }

        public void Dispose()
        {
        }
    }
}
