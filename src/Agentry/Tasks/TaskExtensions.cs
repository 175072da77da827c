using Agentry.Hosting;
using Agentry.Tools;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

public static class TaskExtensions
{
    public const string RoleKey = "Agentry:Role";

    /// <summary>
    /// Tasks: submission, the queue provider, and (unless this process is an <c>api</c> node) the workers and
    /// the schedule runner. The sweeper runs on every node, and with RabbitMQ so does the outbox relay.
    /// </summary>
    public static IHostApplicationBuilder AddTasks(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<TaskOptions>().BindConfiguration(TaskOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IValidateOptions<TaskOptions>, TaskOptionsValidator>();
        services.AddOptions<ScheduleOptions>().BindConfiguration(ScheduleOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<TaskStore>();
        services.AddSingleton<TaskSignal>();
        services.TryAddSingleton<EventSignal>();
        services.AddSingleton<TaskMetrics>();
        services.AddSingleton<RunningTasks>();
        services.AddSingleton<AgentVersions>();
        services.AddSingleton<CompletionNotices>();
        services.AddSingleton<WebhookDelivery>();
        // No tool servers yet: an agent naming tools fails until the MCP feature registers its catalog in place of this.
        services.TryAddSingleton<IAgentTools, EmptyAgentTools>();
        // The built-in handlers come first: a deployment or a test may register its own for a kind, and the worker takes the last.
        services.AddSingleton<ITaskHandler, WebhookTaskHandler>();
        services.AddSingleton<ITaskHandler, NotifyTaskHandler>();
        services.AddSingleton<ITaskHandler, LlmTaskHandler>();
        services.AddSingleton<TaskWriter>();
        services.AddScoped<TaskSubmission>();
        services.AddHostedService<TaskSweeper>();

        // The one switch that picks the dispatch provider; the options validator names a wrong value.
        switch (builder.Configuration[$"{TaskOptions.SectionName}:Provider"] ?? TaskOptions.Database)
        {
            case TaskOptions.Database:
                services.AddSingleton<ITaskQueue, DatabaseTaskQueue>();
                break;
            case TaskOptions.RabbitMq:
                services.AddSingleton<RabbitMqConnection>();
                services.AddSingleton<ITaskQueue, RabbitMqTaskQueue>();
                services.AddHostedService<RabbitMqOutboxRelay>();
                RabbitMqHealthCheck.Register(services);
                break;
        }

        var role = builder.Configuration[RoleKey] ?? "all";
        if (role is not ("all" or "api" or "worker"))
        {
            throw new InvalidOperationException($"{RoleKey} is '{role}'; allowed: all, api, worker.");
        }
        if (role != "api")
        {
            services.AddHostedService<TaskWorker>();
            services.AddHostedService<ScheduleRunner>();
        }
        return builder;
    }
}
