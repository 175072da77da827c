using Agentry.Data;
using Agentry.Operations;
using Microsoft.Extensions.Options;

namespace Agentry.Hosting;

public static class CommandLine
{
    private const int ConfigurationErrorExitCode = 2;

    private const string Usage = """
        usage: agentry [verb] [--key=value ...]
          (none)          run the service (API and workers)
          migrate         apply database migrations and exit
          backup FILE     write a consistent copy of the database to FILE while nodes may run
                          (SQLite: online backup; PostgreSQL: pg_dump --format=custom)
          restore FILE    replace the database with the backup in FILE, then apply newer migrations;
                          stop every node first (SQLite: backup API; PostgreSQL: pg_restore --clean)
          reindex [--collection ID-or-NAME]
                          rebuild vector indexes from the vectors stored in the database
                          (embedded index: stop the nodes first)
          gateway kong    print Kong's declarative configuration (decK YAML) for this route table and these settings
          gateway kong --sync ADMIN-URL
                          apply it through Kong's Admin API (DB-less: POST /config; else PUT per entity), idempotently
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
                case "backup" when Operand(args) is { } file:
                    await Console.Out.WriteLineAsync(await app.Services.GetRequiredService<DatabaseBackup>().BackupAsync(file, app.Lifetime.ApplicationStopping));
                    return 0;
                case "restore" when Operand(args) is { } file:
                    await Console.Out.WriteLineAsync(await app.Services.GetRequiredService<DatabaseBackup>().RestoreAsync(file, app.Lifetime.ApplicationStopping));
                    return 0;
                case "backup" or "restore":
                    await Console.Error.WriteLineAsync($"agentry: {args[0]} needs the backup file: agentry {args[0]} FILE");
                    return ConfigurationErrorExitCode;
                case "reindex":
                    return await app.Services.GetRequiredService<VectorReindex>().ReindexAsync(Option(args, "--collection"), Console.Out, app.Lifetime.ApplicationStopping);
                case "gateway" when args is [_, "kong", ..] && Option(args, "--sync") is { } admin:
                    await Console.Out.WriteLineAsync(await app.Services.GetRequiredService<Mesh.KongSync>()
                        .SyncAsync(admin, ((IEndpointRouteBuilder)app).DataSources, app.Lifetime.ApplicationStopping));
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
        catch (OperationException ex)
        {
            await Console.Error.WriteLineAsync($"agentry: {args[0]}: {ex.Message}");
            return ex.ExitCode;
        }
        catch (Exception ex) when (ConfigurationError(ex) is { } message)
        {
            await Console.Error.WriteLineAsync(message);
            return ConfigurationErrorExitCode;
        }
    }

    /// <summary>The verb's operand (a file): the second argument unless it is an option.</summary>
    private static string? Operand(string[] args) => args is [_, var operand, ..] && !operand.StartsWith('-') ? operand : null;

    /// <summary>The value of <c>--name value</c> or <c>--name=value</c>.</summary>
    private static string? Option(string[] args, string name)
    {
        for (var i = 1; i < args.Length; i++)
        {
            if (args[i] == name && i + 1 < args.Length)
            {
                return args[i + 1];
            }
            if (args[i].StartsWith(name + "=", StringComparison.Ordinal))
            {
                return args[i][(name.Length + 1)..];
            }
        }
        return null;
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
