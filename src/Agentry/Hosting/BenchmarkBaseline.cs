namespace Agentry.Hosting;

/// <summary>
/// The yardstick for API benchmarks: Kestrel with no middleware at all, serving a 20-item JSON list
/// and a plaintext answer, and a webhook receiver (<c>POST /hook</c>: reads the body, answers
/// <c>{"ok":true}</c>) for the task benchmarks' no-op tasks. Started only by the <c>bench-baseline</c> verb, never by the service.
/// </summary>
public static class BenchmarkBaseline
{
    public sealed record Item(int Id, string Name, bool Done);

    private static readonly Item[] Items = Enumerable.Range(1, 20).Select(i => new Item(i, $"item {i}", i % 2 == 0)).ToArray();

    private static readonly Dictionary<string, bool> Ok = new() { ["ok"] = true };

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        var app = builder.Build();
        app.MapGet("/json", () => TypedResults.Ok(Items));
        app.MapGet("/plaintext", () => TypedResults.Text("Healthy"));
        app.MapPost("/hook", async (HttpRequest request) =>
        {
            await request.Body.CopyToAsync(Stream.Null);
            return TypedResults.Ok(Ok);
        });
        await app.RunAsync();
        return 0;
    }
}
