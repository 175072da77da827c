namespace Agentry.Tests.Infrastructure;

public static class Checkout
{
    /// <summary>The checkout this test build came from (where scripts/ and tests/e2e are).</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "scripts", "cluster.sh")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("No checkout (scripts/cluster.sh) above " + AppContext.BaseDirectory);
    }
}
