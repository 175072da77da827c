using Agentry.Hosting;
using Microsoft.Extensions.Options;

namespace Agentry.Chat;

/// <summary>
/// On every node, from start-up on: fails replies whose generating node stopped renewing their lease (it crashed or was
/// killed), so no reply stays <c>generating</c> forever; their text so far is kept. A restarted node finds its own
/// interrupted replies this way too, once their lease has lapsed.
/// </summary>
internal sealed class ConversationSweeper(ConversationStore store, EventSignal signal, IOptions<ConversationOptions> options, ILogger<ConversationSweeper> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromTicks(Math.Clamp(options.Value.ReplyLease.Ticks / 4, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(15).Ticks));
        using var timer = new PeriodicTimer(interval);
        try
        {
            do
            {
                try
                {
                    var swept = await store.SweepAsync(stoppingToken);
                    foreach (var conversation in swept)
                    {
                        signal.Notify(conversation);
                    }
                    if (swept.Count > 0)
                    {
                        ChatLog.Swept(logger, swept.Count);
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    ChatLog.SweepFailed(logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
