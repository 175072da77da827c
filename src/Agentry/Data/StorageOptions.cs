using Microsoft.Extensions.Options;

namespace Agentry.Data;

/// <summary>Which database holds Agentry's state. Section <c>Agentry:Storage</c>; the connection string is <c>ConnectionStrings:Agentry</c>.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Agentry:Storage";
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";
    public const string DefaultSqliteConnection = "Data Source=data/agentry.db";

    /// <summary><c>sqlite</c> (embedded default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>From <c>ConnectionStrings:Agentry</c>; SQLite defaults to <c>data/agentry.db</c>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Apply pending migrations when the program starts (the <c>migrate</c> verb does it on demand).</summary>
    public bool MigrateOnStart { get; set; } = true;

    // PostgreSQL connection pool, as the audit report prescribes.
    public int MinPoolSize { get; set; } = 10;
    public int MaxPoolSize { get; set; } = 50;
    public int CommandTimeoutSeconds { get; set; } = 10;
    public int ConnectionLifetimeSeconds { get; set; } = 300;
}

internal sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options)
    {
        var errors = new List<string>();
        if (options.Provider is not (StorageOptions.Sqlite or StorageOptions.Postgres))
        {
            errors.Add($"Agentry:Storage:Provider is '{options.Provider}'; allowed values: sqlite, postgres.");
        }
        if (options.Provider == StorageOptions.Postgres && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            errors.Add("ConnectionStrings:Agentry is required when Agentry:Storage:Provider is postgres.");
        }
        if (options.MinPoolSize < 0 || options.MaxPoolSize < 1 || options.MinPoolSize > options.MaxPoolSize)
        {
            errors.Add("Agentry:Storage:MinPoolSize and MaxPoolSize must satisfy 0 <= MinPoolSize <= MaxPoolSize, MaxPoolSize >= 1.");
        }
        if (options.CommandTimeoutSeconds is < 1 or > 600)
        {
            errors.Add("Agentry:Storage:CommandTimeoutSeconds must be between 1 and 600.");
        }
        if (options.ConnectionLifetimeSeconds is < 0 or > 86_400)
        {
            errors.Add("Agentry:Storage:ConnectionLifetimeSeconds must be between 0 and 86400.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
