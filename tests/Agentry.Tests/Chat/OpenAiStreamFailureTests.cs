using System.Text.Json;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Agentry.Tests.Chat;

/// <summary>
/// A model server that drops the connection in mid-answer, behind Agentry's <c>/v1</c>: the status (200) went out with
/// the first token, so the stream must end with an error event, not with <c>[DONE]</c> as if the answer were whole.
/// The model server is an in-test stand-in that follows the OpenAI wire format.
/// </summary>
public sealed class OpenAiStreamFailureTests
{
    [Fact]
    public async Task Stand_in_dropping_the_stream_after_the_first_token_ends_it_with_an_error_event()
    {
        var ct = TestContext.Current.CancellationToken;
        var firstSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var upstream = await StandInServer.StartAsync(app =>
        {
            app.MapGet("/v1/models", () => Results.Text(OpenAiProtocolTests.Models, "application/json"));
            app.MapPost("/v1/chat/completions", async context =>
            {
                const string chunk = """{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1746000000,"model":"plain","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}""";
                await StandInServer.StreamAsync(context.Response, "text/event-stream", [$"data: {chunk}\n\n"]);
                await firstSeen.Task.WaitAsync(context.RequestAborted);
                context.Abort();
            });
        });
        await using var gateway = AgentryApp.Sqlite(new Dictionary<string, string?>
        {
            ["Agentry:Llm:Providers:0:Name"] = "remote",
            ["Agentry:Llm:Providers:0:Kind"] = "openai",
            ["Agentry:Llm:Providers:0:Endpoints:0"] = new Uri(upstream.BaseUri, "/v1").ToString(),
        });
        var admin = await gateway.AdminClientAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = HttpAssertions.Json(new { model = "remote/plain", messages = new[] { new { role = "user", content = "hi" } }, stream = true }),
        };

        using var response = await admin.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var data = new List<string>();
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data.Add(line["data: ".Length..]);
                firstSeen.TrySetResult();
            }
        }

        Assert.Equal(2, data.Count);
        Assert.Equal("Hel", JsonDocument.Parse(data[0]).RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        var error = JsonDocument.Parse(data[1]).RootElement.GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
    }
}
