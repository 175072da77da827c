using System.Net;
using System.Text;
using Agentry.Data;
using Agentry.Tests.Infrastructure;
using Agentry.Workspaces;

namespace Agentry.Tests.Workspaces;

/// <summary>The workspace API's behaviour, the same on every storage provider.</summary>
public abstract class WorkspaceApiContract(StorageFixture fixture)
{
    private const string Url = "/api/v1/workspaces";
    private readonly HttpClient _client = fixture.Client;

    [Fact]
    public async Task Create_returns_201_with_location_and_the_stored_workspace()
    {
        var slug = NewSlug();
        var response = await _client.PostJsonAsync(Url, new { name = "Acme Ops", slug, description = "ops team" });

        var created = await response.ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        Assert.Equal($"{Url}/{created.Id}", response.Headers.Location?.OriginalString);
        Assert.Equal(7, created.Id.Version);
        Assert.Equal(("Acme Ops", slug, "ops team"), (created.Name, created.Slug, created.Description));
        Assert.Equal(DateTimeKind.Utc, created.CreatedAt.Kind);
        Assert.InRange(created.CreatedAt, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(1));

        var fetched = await (await _client.GetAsync(response.Headers.Location)).ReadAsync<WorkspaceResponse>();
        Assert.Equal(created, fetched);
    }

    [Fact]
    public async Task Server_owned_fields_sent_by_the_client_are_ignored()
    {
        var forgedId = Guid.CreateVersion7();
        var response = await _client.PostJsonAsync(Url, new { id = forgedId, name = "n", slug = NewSlug(), createdAt = "2001-01-01T00:00:00Z" });

        var created = await response.ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        Assert.NotEqual(forgedId, created.Id);
        Assert.True(created.CreatedAt.Year > 2001);
    }

    [Fact]
    public async Task Text_is_stored_literally_including_sql_and_unicode()
    {
        const string name = "'; DROP TABLE workspaces; -- ünïcødé 工作区 🚀";
        var created = await (await _client.PostJsonAsync(Url, new { name, slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);

        var fetched = await (await _client.GetAsync($"{Url}/{created.Id}")).ReadAsync<WorkspaceResponse>();
        Assert.Equal(name, fetched.Name);
    }

    [Fact]
    public async Task A_taken_slug_is_a_409_conflict()
    {
        var slug = NewSlug();
        (await _client.PostJsonAsync(Url, new { name = "first", slug })).EnsureSuccessStatusCode();

        var second = await _client.PostJsonAsync(Url, new { name = "second", slug });

        var problem = await second.AssertProblemAsync(HttpStatusCode.Conflict, "slug_taken");
        Assert.Contains(slug, problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Invalid_fields_are_a_400_naming_each_field()
    {
        var response = await _client.PostJsonAsync(Url, new { name = "", slug = "Not A Slug", description = new string('x', 1001) });

        var problem = await response.AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        var errors = problem.GetProperty("errors");
        Assert.True(errors.TryGetProperty("name", out _), errors.ToString());
        Assert.True(errors.TryGetProperty("slug", out _), errors.ToString());
        Assert.True(errors.TryGetProperty("description", out _), errors.ToString());
    }

    [Fact]
    public async Task Update_changes_what_was_sent_and_later_reads_see_it()
    {
        var slug = NewSlug();
        var created = await (await _client.PostJsonAsync(Url, new { name = "before", slug, description = "keep me" })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        (await _client.GetAsync($"{Url}/{created.Id}")).EnsureSuccessStatusCode(); // now cached

        var updated = await (await _client.PatchAsync($"{Url}/{created.Id}", Json(new { name = "after" }))).ReadAsync<WorkspaceResponse>();

        Assert.Equal(("after", slug, "keep me"), (updated.Name, updated.Slug, updated.Description));
        Assert.True(updated.UpdatedAt >= created.UpdatedAt);
        var fetched = await (await _client.GetAsync($"{Url}/{created.Id}")).ReadAsync<WorkspaceResponse>();
        Assert.Equal("after", fetched.Name);
    }

    [Fact]
    public async Task Delete_removes_the_workspace_and_later_calls_answer_404()
    {
        var created = await (await _client.PostJsonAsync(Url, new { name = "doomed", slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created);
        (await _client.GetAsync($"{Url}/{created.Id}")).EnsureSuccessStatusCode(); // now cached

        Assert.Equal(HttpStatusCode.NoContent, (await _client.DeleteAsync($"{Url}/{created.Id}")).StatusCode);

        await (await _client.GetAsync($"{Url}/{created.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await _client.DeleteAsync($"{Url}/{created.Id}")).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
        await (await _client.PatchAsync($"{Url}/{created.Id}", Json(new { name = "x" }))).AssertProblemAsync(HttpStatusCode.NotFound, "not_found");
    }

    [Theory]
    [InlineData("-createdAt")]
    [InlineData("createdAt")]
    [InlineData("name")]
    [InlineData("-name")]
    public async Task Paging_visits_every_row_once_in_sort_order(string sort)
    {
        var ours = new List<Guid>();
        foreach (var name in new[] { "kilo", "alpha", "kilo", "zulu", "mike", "alpha", "bravo" })
        {
            ours.Add((await (await _client.PostJsonAsync(Url, new { name, slug = NewSlug() })).ReadAsync<WorkspaceResponse>(HttpStatusCode.Created)).Id);
        }

        var seen = new List<WorkspaceResponse>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var query = $"{Url}?limit=3&sort={Uri.EscapeDataString(sort)}" + (cursor is null ? "" : $"&cursor={Uri.EscapeDataString(cursor)}");
            var page = await (await _client.GetAsync(query)).ReadAsync<Page<WorkspaceResponse>>();
            Assert.InRange(page.Items.Count, 0, 3);
            seen.AddRange(page.Items);
            cursor = page.NextCursor;
            Assert.True(++pages < 1000, "paging does not end");
        }
        while (cursor is not null);

        Assert.Equal(seen.Count, seen.Select(w => w.Id).Distinct().Count());
        Assert.Superset(ours.ToHashSet(), seen.Select(w => w.Id).ToHashSet());
        var expected = sort switch
        {
            "-createdAt" => seen.OrderByDescending(w => w.Id.ToString()),
            "createdAt" => seen.OrderBy(w => w.Id.ToString()),
            "name" => seen.OrderBy(w => w.Name, StringComparer.Ordinal).ThenBy(w => w.Id.ToString()),
            _ => seen.OrderByDescending(w => w.Name, StringComparer.Ordinal).ThenByDescending(w => w.Id.ToString()),
        };
        if (sort.EndsWith("createdAt", StringComparison.Ordinal))
        {
            Assert.Equal(expected.Select(w => w.Id), seen.Select(w => w.Id));
        }
        else
        {
            // Collation may differ by provider; ours are plain lowercase ASCII, whose order every collation agrees on.
            var ourNames = seen.Where(w => ours.Contains(w.Id)).Select(w => w.Name).ToList();
            Assert.Equal(expected.Where(w => ours.Contains(w.Id)).Select(w => w.Name), ourNames);
        }
    }

    [Fact]
    public async Task Bad_list_parameters_are_400s()
    {
        (await (await _client.GetAsync($"{Url}?sort=name;DROP")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed"))
            .GetProperty("errors").GetProperty("sort");
        await (await _client.GetAsync($"{Url}?cursor=not-a-cursor")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
        await (await _client.GetAsync($"{Url}?limit=0")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await _client.GetAsync($"{Url}?limit=201")).AssertProblemAsync(HttpStatusCode.BadRequest, "validation_failed");
        await (await _client.GetAsync($"{Url}?limit=lots")).AssertProblemAsync(HttpStatusCode.BadRequest, "bad_request");

        for (var i = 0; i < 2; i++)
        {
            (await _client.PostJsonAsync(Url, new { name = "p", slug = NewSlug() })).EnsureSuccessStatusCode();
        }
        var byName = await (await _client.GetAsync($"{Url}?limit=1&sort=name")).ReadAsync<Page<WorkspaceResponse>>();
        Assert.NotNull(byName.NextCursor);
        await (await _client.GetAsync($"{Url}?sort=createdAt&cursor={byName.NextCursor}")).AssertProblemAsync(HttpStatusCode.BadRequest, "invalid_cursor");
    }

    private static string NewSlug() => "ws-" + Guid.NewGuid().ToString("N")[..16];

    private static StringContent Json(object body) =>
        new(System.Text.Json.JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
}

public sealed class SqliteWorkspaceApiTests(SqliteFixture fixture) : WorkspaceApiContract(fixture), IClassFixture<SqliteFixture>;

public sealed class PostgresWorkspaceApiTests(PostgresFixture fixture) : WorkspaceApiContract(fixture), IClassFixture<PostgresFixture>;
