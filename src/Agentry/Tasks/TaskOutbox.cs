using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Agentry.Tasks;

/// <summary>
/// A task that a broker must be told about (RabbitMQ only): written in the same transaction as the
/// change that made the task due, published by the relay once <see cref="DueAt"/> has come, and
/// deleted after the broker confirms it.
/// </summary>
public sealed class TaskOutboxEntry
{
    public long Id { get; init; }
    public Guid TaskId { get; init; }
    public int Priority { get; init; }
    public DateTime DueAt { get; init; }
}

internal sealed class TaskOutboxConfiguration : IEntityTypeConfiguration<TaskOutboxEntry>
{
    public void Configure(EntityTypeBuilder<TaskOutboxEntry> e)
    {
        e.ToTable("task_outbox");
        e.HasKey(x => x.Id);
        e.Property(x => x.Id).ValueGeneratedOnAdd();
        e.HasIndex(x => x.DueAt);
    }
}
