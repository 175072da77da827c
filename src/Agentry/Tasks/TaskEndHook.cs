using Agentry.Data;

namespace Agentry.Tasks;

/// <summary>
/// State a feature keeps beside the tasks of one kind that must follow a task into an end its handler did not write
/// itself: cancelled (before it ran, or while running), or dead after a lost lease or a timeout. A document whose
/// ingestion was cancelled, for one, must not stay <c>processing</c>. Called in the transaction that ends the tasks, so
/// the task and the feature's row cannot disagree after a crash.
/// </summary>
internal interface ITaskEndHook
{
    /// <summary>The kind of the tasks it follows.</summary>
    string Kind { get; }

    /// <param name="ended">Tasks (of any kind) just moved to <c>cancelled</c> or <c>dead</c> in <paramref name="db"/>'s open transaction.</param>
    Task EndedAsync(AppDbContext db, IReadOnlyList<Guid> ended, CancellationToken ct);
}
