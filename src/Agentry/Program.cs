using Agentry.Agents;
using Agentry.Chat;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Identity;
using Agentry.Knowledge;
using Agentry.Mcp;
using Agentry.Mesh;
using Agentry.Models;
using Agentry.Operations;
using Agentry.Sockets;
using Agentry.Tasks;
using Agentry.Tools;
using Agentry.Usage;
using Agentry.WebConsole;
using Agentry.Workspaces;

if (args is ["bench-baseline", ..])
{
    return await BenchmarkBaseline.RunAsync(args[1..]);
}

// The program's own directory is the content root, so appsettings.json (log levels included) is read wherever the
// process is started from; relative data paths (data/agentry.db) stay relative to the working directory.
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

builder.AddAgentryHosting();
builder.AddTelemetry();
builder.AddStorage();
builder.AddCaching();
builder.AddEgressGuard();
builder.AddAgentryIdentity();
builder.AddAgentryRateLimiting();
builder.AddUsage();
builder.AddTools();
builder.AddTasks();
builder.AddApprovals();
builder.AddModels();
builder.AddEmbeddings();
builder.AddChat();
builder.AddKnowledge();
builder.AddOpenAiApi();
builder.AddWebSocketApi();
builder.AddMcpEndpoint();
builder.AddMesh();
builder.AddOperations();
builder.AddWebConsole();

var app = builder.BuildAgentry();

app.UseAgentryHosting();
app.UseWebConsole();
app.UseWebSocketApi();
app.UseAgentryIdentity();
app.UseAgentryRateLimiting();
app.MapHealth();
app.MapTelemetry();
app.MapApiDocs();
app.MapIdentity();
app.MapWorkspaces();
app.MapAgents();
app.MapTasks();
app.MapApprovals();
app.MapSchedules();
app.MapModels();
app.MapChat();
app.MapKnowledge();
app.MapUsage();
app.MapTools();
app.MapOpenAiApi();
app.MapWebSocketApi();
app.MapMcpEndpoint();

return await app.RunAgentryAsync(args);

/// <summary>Entry point; public so tests can host it with WebApplicationFactory.</summary>
public partial class Program;
