using Agentry.Data;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

public static class CommandLine
{
    private const int ConfigurationErrorExitCode = 2;

    private const string Usage = """
        usage: agentry [verb] [--key=value ...]
          (none)          run the service (API and workers)
          migrate         apply database migrations and exit
          gateway kong    print Kong's declarative configuration (decK YAML) for this route table and these settings
          bench-baseline  serve a bare Kestrel JSON endpoint (benchmark baseline only)
        """;

    /// <summary>Builds the app; a bad setting found while building ends the program like one found at start.</summary>
    public static WebApplication BuildAgentry(this WebApplicationBuilder builder)
    {
        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ConfigurationError(ex) is { } message)
        {
            Console.Error.WriteLine(message);
            Environment.Exit(ConfigurationErrorExitCode);
            throw;
        }
    }

    /// <summary>
    /// Runs the verb named by the first argument. A bad setting ends the program with exit code 2
    /// and one line naming the key and what is allowed, not a stack trace.
    /// </summary>
    public static async Task<int> RunAgentryAsync(this WebApplication app, string[] args)
    {
        try
        {
            switch (Verb(args))
            {
                case "migrate":
                    await app.Services.GetRequiredService<DatabaseMigrator>().MigrateAsync(app.Lifetime.ApplicationStopping);
                    return 0;
                case "gateway" when args is [_, "kong", ..]:
                    await Console.Out.WriteAsync(app.Services.GetRequiredService<Mesh.KongConfiguration>().ToYaml(((IEndpointRouteBuilder)app).DataSources));
                    return 0;
                case null:
                    await app.RunAsync();
                    return 0;
                default:
                    await Console.Error.WriteLineAsync($"agentry: unknown verb '{args[0]}'.\n{Usage}");
                    return ConfigurationErrorExitCode;
            }
        }
        catch (Exception ex) when (ConfigurationError(ex) is { } message)
        {
            await Console.Error.WriteLineAsync(message);
            return ConfigurationErrorExitCode;
        }
    }

    /// <summary>The first argument unless it is a setting (<c>--key value</c>, <c>key=value</c>).</summary>
    private static string? Verb(string[] args) =>
        args is [var first, ..] && !first.StartsWith('-') && !first.Contains('=') ? first : null;

    private static string? ConfigurationError(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            switch (exception)
            {
                case OptionsValidationException invalid:
                    return "agentry: configuration error: " + string.Join(" ", invalid.Failures);
                // The binder's own message names the key and the type it wanted.
                case InvalidOperationException when exception.Message.StartsWith("Failed to convert configuration value", StringComparison.Ordinal):
                    return "agentry: configuration error: " + exception.Message;
            }
        }
        return null;
    }
}
