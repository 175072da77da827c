using Microsoft.Extensions.AI;

namespace Agentry.Tools;

/// <summary>
/// The tools an agent may call, as <see cref="AIFunction"/>s the model is offered and the run invokes. This is the seam
/// the MCP servers plug into: their catalog implements it, and an <c>llm</c> agent's run asks it for the tools its
/// definition allows. A name it does not return is a tool that does not exist, and the run refuses to start without it.
/// </summary>
public interface IAgentTools
{
    /// <summary>
    /// The tools of the caller's workspace with these names (names it does not know are left out), whose calls are made
    /// and audited as <paramref name="caller"/>'s. Throw <see cref="Hosting.DependencyUnavailableException"/> when the
    /// tools' server cannot be reached, so the task is retried.
    /// </summary>
    ValueTask<IReadOnlyList<AIFunction>> FindAsync(ToolCaller caller, IReadOnlyList<string> names, CancellationToken ct);
}

/// <summary>
/// The tools of an installation that connects no tool servers yet: none. Registered unless another implementation is,
/// so an agent that names tools fails with the names no server offers instead of running without them.
/// </summary>
internal sealed class EmptyAgentTools : IAgentTools
{
    public ValueTask<IReadOnlyList<AIFunction>> FindAsync(ToolCaller caller, IReadOnlyList<string> names, CancellationToken ct) =>
        ValueTask.FromResult<IReadOnlyList<AIFunction>>([]);
}
