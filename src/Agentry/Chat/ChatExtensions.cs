using Agentry.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Agentry.Chat;

public static class ChatExtensions
{
    /// <summary>
    /// Conversations (section <c>Agentry:Chat</c>): replies generated in the background on the node that was asked, their
    /// events in the database log, and on every node the sweeper that fails replies whose node went away.
    /// </summary>
    public static IHostApplicationBuilder AddChat(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<ConversationOptions>().BindConfiguration(ConversationOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.TryAddSingleton<EventSignal>();
        services.AddSingleton<ConversationStore>();
        services.AddSingleton<ConversationHistory>();
        services.AddSingleton<ConversationReplies>();
        services.AddHostedService(sp => sp.GetRequiredService<ConversationReplies>());
        services.AddHostedService<ConversationSweeper>();
        services.AddScoped<ConversationExchanges>();
        return builder;
    }
}
