using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Workspaces;

if (args is ["bench-baseline", ..])
{
    return await BenchmarkBaseline.RunAsync(args[1..]);
}

var builder = WebApplication.CreateBuilder(args);

builder.AddAgentryHosting();
builder.AddTelemetry();
builder.AddStorage();
builder.AddCaching();
builder.AddEgressGuard();

var app = builder.BuildAgentry();

app.UseAgentryHosting();
app.MapHealth();
app.MapTelemetry();
app.MapApiDocs();
app.MapWorkspaces();

return await app.RunAgentryAsync(args);

/// <summary>Entry point; public so tests can host it with WebApplicationFactory.</summary>
public partial class Program;
