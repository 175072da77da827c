using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Agentry.Tasks;

/// <summary>The task queue and its workers. Section <c>Agentry:Queue</c>.</summary>
public sealed class TaskOptions
{
    public const string SectionName = "Agentry:Queue";
    public const string Database = "database";
    public const string RabbitMq = "rabbitmq";

    /// <summary><c>database</c> (the embedded default) or <c>rabbitmq</c>.</summary>
    public string Provider { get; set; } = Database;

    /// <summary>Tasks one worker process runs at the same time.</summary>
    [Range(1, 1_000, ErrorMessage = "Agentry:Queue:Concurrency must be between 1 and 1000.")]
    public int Concurrency { get; set; } = 16;

    /// <summary>How long a claim lasts without a heartbeat; a dead worker's tasks run again after it lapses.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Agentry:Queue:Lease must be between 00:00:01 and 01:00:00.")]
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a worker renews its leases and learns of cancellations; well under <see cref="Lease"/>.</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00", ErrorMessage = "Agentry:Queue:Heartbeat must be between 00:00:00.050 and 00:10:00.")]
    public TimeSpan Heartbeat { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long an idle worker waits before it looks for due tasks again (new local tasks wake it at once).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00", ErrorMessage = "Agentry:Queue:PollInterval must be between 00:00:00.010 and 00:01:00.")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The first retry's delay; each later one doubles it, plus up to half again of jitter.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00", ErrorMessage = "Agentry:Queue:RetryBaseDelay must be between 00:00:00.010 and 01:00:00.")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(2);

    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00", ErrorMessage = "Agentry:Queue:RetryMaxDelay must be between 00:00:00.010 and 1.00:00:00.")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(10);

    [Range(1, 100, ErrorMessage = "Agentry:Queue:DefaultMaxAttempts must be between 1 and 100.")]
    public int DefaultMaxAttempts { get; set; } = 5;

    [Range(1, 86_400, ErrorMessage = "Agentry:Queue:DefaultTimeoutSeconds must be between 1 and 86400.")]
    public int DefaultTimeoutSeconds { get; set; } = 300;

    /// <summary>How long a stopping worker lets running tasks finish before it cancels and releases them.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00", ErrorMessage = "Agentry:Queue:ShutdownGrace must be between 00:00:00 and 00:10:00.")]
    public TimeSpan ShutdownGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>RabbitMQ connection URI (<c>amqp://user:pass@host:5672/vhost</c>), with <see cref="Provider"/> <c>rabbitmq</c>.</summary>
    public string? RabbitMqUri { get; set; }

    /// <summary>
    /// The quorum queue tasks are dispatched through; its exchange has the same name, its dead letters go to
    /// <c>{name}.dlx</c> and <c>{name}.dead</c>. Deployments sharing one virtual host need different names.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9._-]{1,200}$", ErrorMessage = "Agentry:Queue:RabbitMqQueue must be 1-200 letters, digits, '.', '_' or '-'.")]
    public string RabbitMqQueue { get; set; } = "agentry.tasks";

    /// <summary>
    /// With RabbitMQ: a task that has been due and unclaimed this long, with nothing waiting on the outbox, is
    /// published again (the broker lost its message, or dead-lettered it). Duplicates are harmless; this bounds how
    /// long a lost message can delay a task.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "Agentry:Queue:RepublishAfter must be between 00:00:01 and 1.00:00:00.")]
    public TimeSpan RepublishAfter { get; set; } = TimeSpan.FromMinutes(2);
}

internal sealed class TaskOptionsValidator : IValidateOptions<TaskOptions>
{
    public ValidateOptionsResult Validate(string? name, TaskOptions o)
    {
        var errors = new List<string>();
        if (o.Provider is not (TaskOptions.Database or TaskOptions.RabbitMq))
        {
            errors.Add($"Agentry:Queue:Provider is '{o.Provider}'; allowed: database, rabbitmq.");
        }
        if (o.Provider == TaskOptions.RabbitMq && !Uri.TryCreate(o.RabbitMqUri, UriKind.Absolute, out _))
        {
            errors.Add("Agentry:Queue:RabbitMqUri must be an amqp:// URI when Agentry:Queue:Provider is rabbitmq.");
        }
        if (o.Heartbeat * 2 > o.Lease)
        {
            errors.Add("Agentry:Queue:Heartbeat must be at most half of Agentry:Queue:Lease, so one late heartbeat does not lose a lease.");
        }
        if (o.RetryMaxDelay < o.RetryBaseDelay)
        {
            errors.Add("Agentry:Queue:RetryMaxDelay must not be below Agentry:Queue:RetryBaseDelay.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
