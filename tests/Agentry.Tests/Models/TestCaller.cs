using Agentry.Models;

namespace Agentry.Tests.Models;

/// <summary>The caller of model calls a test makes straight through the catalog: a workspace of its own, nobody's behalf.</summary>
internal static class TestCaller
{
    public static readonly ModelCaller Instance = new(Guid.CreateVersion7(), null, null);
}
