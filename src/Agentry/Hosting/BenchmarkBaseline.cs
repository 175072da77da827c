namespace Agentry.Hosting;

/// <summary>
/// The yardstick for API benchmarks: Kestrel with no middleware at all, serving a 20-item JSON list
/// and a plaintext answer. Started only by the <c>bench-baseline</c> verb, never by the service.
/// </summary>
public static class BenchmarkBaseline
{
    public sealed record Item(int Id, string Name, bool Done);

    private static readonly Item[] Items = Enumerable.Range(1, 20).Select(i => new Item(i, $"item {i}", i % 2 == 0)).ToArray();

    public static async Task<int> RunAsync(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        var app = builder.Build();
        app.MapGet("/json", () => TypedResults.Ok(Items));
        app.MapGet("/plaintext", () => TypedResults.Text("Healthy"));
        await app.RunAsync();
        return 0;
    }
}
