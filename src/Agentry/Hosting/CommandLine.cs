using Agentry.Data;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

public static class CommandLine
{
    private const string Usage = """
        usage: agentry [verb] [--key=value ...]
          (none)          run the service (API and workers)
          migrate         apply database migrations and exit
          bench-baseline  serve a bare Kestrel JSON endpoint (benchmark baseline only)
        """;

    /// <summary>
    /// Runs the verb named by the first argument. A bad setting ends the program with exit code 2
    /// and one line naming the key and what is allowed, not a stack trace.
    /// </summary>
    public static async Task<int> RunAgentryAsync(this WebApplication app, string[] args)
    {
        try
        {
            switch (args.FirstOrDefault())
            {
                case "migrate":
                    await app.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync(app.Lifetime.ApplicationStopping);
                    return 0;
                case null or ['-', ..]:
                    await app.RunAsync();
                    return 0;
                default:
                    await Console.Error.WriteLineAsync($"agentry: unknown verb '{args[0]}'.\n{Usage}");
                    return 2;
            }
        }
        catch (OptionsValidationException ex)
        {
            await Console.Error.WriteLineAsync("agentry: configuration error: " + string.Join(" ", ex.Failures));
            return 2;
        }
    }
}
