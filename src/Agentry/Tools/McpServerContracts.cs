using System.Text.RegularExpressions;

namespace Agentry.Tools;

/// <summary>
/// A server's fields as a create or an update sends them. <see cref="Environment"/> and <see cref="Headers"/> values are
/// write-only: responses name the variables and headers, never their values.
/// </summary>
public abstract record McpServerInput
{
    public string? Name { get; init; }
    public string? Transport { get; init; }
    public string? Command { get; init; }
    public List<string>? Args { get; init; }
    public Dictionary<string, string>? Environment { get; init; }
    public string? WorkingDirectory { get; init; }
    public string? Url { get; init; }
    public Dictionary<string, string>? Headers { get; init; }
    public bool? Enabled { get; init; }
    public int? CallTimeoutSeconds { get; init; }
    public bool? RequireApproval { get; init; }
    public List<string>? ApprovalTools { get; init; }
}

/// <summary>A server to register: a field left out takes its default (enabled, a 30 s call timeout, no approvals).</summary>
public sealed record CreateMcpServerRequest : McpServerInput;

/// <summary>A change: a field left out (or null) keeps its value; <see cref="McpServerInput.Environment"/> or <see cref="McpServerInput.Headers"/> sent replace all of them.</summary>
public sealed record UpdateMcpServerRequest : McpServerInput;

/// <summary>How the server's session is doing on the node that answered (each node runs its own sessions).</summary>
public sealed record McpServerStatus(string State, string? LastError, int RestartCount, int ToolCount, DateTime? StartedAt);

public sealed record McpServerResponse(
    Guid Id, string Name, string Transport, string? Command, IReadOnlyList<string> Args, IReadOnlyList<string> Environment,
    string? WorkingDirectory, string? Url, IReadOnlyList<string> Headers, bool Enabled, int CallTimeoutSeconds, bool RequireApproval,
    IReadOnlyList<string> ApprovalTools, McpServerStatus Status, DateTime CreatedAt, DateTime UpdatedAt, Guid? CreatedBy);

/// <summary>A server's whole configuration after a create or an update, before it is stored: what <see cref="McpServerContracts.Check"/> judges.</summary>
internal sealed record McpServerSpec(
    string Name, string Transport, string? Command, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Environment,
    string? WorkingDirectory, string? Url, IReadOnlyDictionary<string, string> Headers, bool Enabled, int CallTimeoutSeconds,
    bool RequireApproval, IReadOnlyList<string> ApprovalTools)
{
    public McpServerDefinition ToDefinition() => new(
        Command, Args, WorkingDirectory, Url, [.. Environment.Keys.Order(StringComparer.Ordinal)], [.. Headers.Keys.Order(StringComparer.Ordinal)], ApprovalTools);

    public McpServerSecrets ToSecrets() => new(Environment, Headers);
}

internal static partial class McpServerContracts
{
    public const int DefaultCallTimeoutSeconds = 30;
    public const int MaxCallTimeoutSeconds = 600;
    public const int MaxArgs = 64;
    public const int MaxArgLength = 2_000;
    public const int MaxEnvironment = 64;
    public const int MaxHeaders = 32;
    public const int MaxValueLength = 4_000;
    public const int MaxPathLength = 1_000;
    public const int MaxUrlLength = 2_000;
    public const int MaxApprovalTools = 200;
    public const int MaxToolNameLength = 128;
    public const string NameMessage =
        "The name must be a slug of 1-32 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.";

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")]
    private static partial Regex Slug();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    private static partial Regex VariableName();

    [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]
    private static partial Regex HeaderName();

    public static McpServerSpec ToSpec(this CreateMcpServerRequest r) => new(
        r.Name?.Trim() ?? "", r.Transport ?? "", r.Command, r.Args ?? [], r.Environment ?? [], r.WorkingDirectory, r.Url, r.Headers ?? [],
        r.Enabled ?? true, r.CallTimeoutSeconds ?? DefaultCallTimeoutSeconds, r.RequireApproval ?? false, r.ApprovalTools ?? []);

    /// <summary>
    /// The server after an update: what was sent replaces, what was left out stays (secrets included). A change of transport
    /// drops the old transport's settings (command, args, environment, working directory, or url and headers).
    /// </summary>
    public static McpServerSpec Apply(this UpdateMcpServerRequest r, McpServer s, McpServerDefinition current, McpServerSecrets currentSecrets)
    {
        var switching = r.Transport is not null && r.Transport != s.Transport;
        var d = switching ? new McpServerDefinition(null, [], null, null, [], [], current.ApprovalTools) : current;
        return r.Merge(s, d, switching ? McpServerSecrets.None : currentSecrets);
    }

    private static McpServerSpec Merge(this McpServerInput r, McpServer s, McpServerDefinition d, McpServerSecrets secrets) => new(
        r.Name?.Trim() ?? s.Name, r.Transport ?? s.Transport, r.Command ?? d.Command, r.Args ?? d.Args, r.Environment ?? secrets.Environment,
        r.WorkingDirectory ?? d.WorkingDirectory, r.Url ?? d.Url, r.Headers ?? secrets.Headers, r.Enabled ?? s.Enabled,
        r.CallTimeoutSeconds ?? s.CallTimeoutSeconds, r.RequireApproval ?? s.RequireApproval, r.ApprovalTools ?? d.ApprovalTools);

    /// <summary>Every rule a server's configuration must meet, by field; empty when valid. <paramref name="refusesUrl"/> is the egress guard's verdict.</summary>
    public static Dictionary<string, string[]> Check(McpServerSpec s, Func<Uri, string?> refusesUrl)
    {
        var errors = new Dictionary<string, string[]>();
        if (!Slug().IsMatch(s.Name))
        {
            errors["name"] = [NameMessage];
        }
        if (s.CallTimeoutSeconds is < 1 or > MaxCallTimeoutSeconds)
        {
            errors["callTimeoutSeconds"] = [$"The call timeout must be 1-{MaxCallTimeoutSeconds} seconds."];
        }
        CheckNames(errors, "approvalTools", s.ApprovalTools, MaxApprovalTools);
        switch (s.Transport)
        {
            case McpTransports.Stdio:
                CheckStdio(errors, s);
                break;
            case McpTransports.Http:
                CheckHttp(errors, s, refusesUrl);
                break;
            default:
                errors["transport"] = ["The transport must be one of: stdio, http."];
                break;
        }
        return errors;
    }

    private static void CheckStdio(Dictionary<string, string[]> errors, McpServerSpec s)
    {
        if (string.IsNullOrWhiteSpace(s.Command) || s.Command.Length > MaxPathLength || s.Command.Contains('\0'))
        {
            errors["command"] = [$"A stdio server needs a command of 1-{MaxPathLength} characters."];
        }
        if (s.Args.Count > MaxArgs)
        {
            errors["args"] = [$"At most {MaxArgs} arguments."];
        }
        for (var i = 0; i < Math.Min(s.Args.Count, MaxArgs); i++)
        {
            if (s.Args[i] is null || s.Args[i].Length > MaxArgLength || s.Args[i].Contains('\0'))
            {
                errors[$"args[{i}]"] = [$"Each argument must be at most {MaxArgLength} characters."];
            }
        }
        CheckValues(errors, "environment", s.Environment, MaxEnvironment, VariableName(),
            "Variable names are letters, digits and underscores, not starting with a digit, at most 128 characters.");
        if (s.WorkingDirectory is not null && (s.WorkingDirectory.Length > MaxPathLength || !Path.IsPathFullyQualified(s.WorkingDirectory)))
        {
            errors["workingDirectory"] = [$"The working directory must be an absolute path of at most {MaxPathLength} characters."];
        }
        if (s.Url is not null)
        {
            errors["url"] = ["Only http servers take a url."];
        }
        if (s.Headers.Count > 0)
        {
            errors["headers"] = ["Only http servers take headers."];
        }
    }

    private static void CheckHttp(Dictionary<string, string[]> errors, McpServerSpec s, Func<Uri, string?> refusesUrl)
    {
        if (s.Url is not { Length: > 0 and <= MaxUrlLength } || !Uri.TryCreate(s.Url, UriKind.Absolute, out var url))
        {
            errors["url"] = [$"An http server needs an absolute http or https url of at most {MaxUrlLength} characters."];
        }
        else if (refusesUrl(url) is { } refused)
        {
            errors["url"] = [refused];
        }
        CheckValues(errors, "headers", s.Headers, MaxHeaders, HeaderName(), "Header names are HTTP tokens of at most 128 characters.");
        if (s.Command is not null || s.Args.Count > 0 || s.Environment.Count > 0 || s.WorkingDirectory is not null)
        {
            errors["command"] = ["Only stdio servers take a command, args, environment or working directory."];
        }
    }

    private static void CheckValues(
        Dictionary<string, string[]> errors, string field, IReadOnlyDictionary<string, string> values, int max, Regex names, string nameMessage)
    {
        if (values.Count > max)
        {
            errors[field] = [$"At most {max} entries."];
            return;
        }
        foreach (var (name, value) in values)
        {
            if (!names.IsMatch(name))
            {
                errors[$"{field}.{name}"] = [nameMessage];
            }
            else if (value is null || value.Length > MaxValueLength || value.Contains('\0') || (field == "headers" && value.AsSpan().IndexOfAny('\r', '\n') >= 0))
            {
                errors[$"{field}.{name}"] = [$"Each value must be at most {MaxValueLength} characters, without NUL (or line breaks in headers)."];
            }
        }
    }

    private static void CheckNames(Dictionary<string, string[]> errors, string field, IReadOnlyList<string> names, int max)
    {
        if (names.Count > max)
        {
            errors[field] = [$"At most {max} entries."];
            return;
        }
        for (var i = 0; i < names.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(names[i]) || names[i].Length > MaxToolNameLength)
            {
                errors[$"{field}[{i}]"] = [$"Each entry must be 1-{MaxToolNameLength} characters."];
            }
        }
    }

    public static McpServerResponse ToResponse(this McpServer s, McpServerStatus status)
    {
        var d = McpServerDefinition.Parse(s.Definition);
        return new(s.Id, s.Name, s.Transport, d.Command, d.Args, d.EnvironmentNames, d.WorkingDirectory, d.Url, d.HeaderNames, s.Enabled,
            s.CallTimeoutSeconds, s.RequireApproval, d.ApprovalTools, status, s.CreatedAt, s.UpdatedAt, s.CreatedBy);
    }
}
