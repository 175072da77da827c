using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Agentry.Agents;

/// <summary>The definition fields a create and an update both take; on an update, a field left out (or null) keeps its value.</summary>
public abstract record AgentDefinitionInput
{
    [StringLength(AgentContracts.DescriptionMaxLength)]
    public string? Description { get; init; }

    [StringLength(AgentContracts.ModelMaxLength)]
    public string? Model { get; init; }

    [StringLength(AgentContracts.SystemPromptMaxLength)]
    public string? SystemPrompt { get; init; }

    /// <summary>On an update, a list sent empty is emptied.</summary>
    [MaxLength(AgentContracts.MaxAllowedTools)]
    public List<string>? AllowedTools { get; init; }

    [MaxLength(AgentContracts.MaxKnowledgeCollections)]
    public List<string>? KnowledgeCollections { get; init; }

    public AgentLimitsInput? Limits { get; init; }

    public AgentWebhook? Webhook { get; init; }

    /// <summary>Where a signed notice goes when one of the agent's tasks ends (any kind of agent).</summary>
    public AgentWebhook? OnComplete { get; init; }

    /// <summary>A <c>tool</c> agent's one tool, by qualified name (<c>{server}__{tool}</c>); the task's input is its arguments.</summary>
    [StringLength(AgentContracts.ToolNameMaxLength)]
    public string? Tool { get; init; }

    /// <summary>Qualified tool names whose calls by this agent wait for a person's approval. On an update, a list sent empty is emptied.</summary>
    [MaxLength(AgentContracts.MaxAllowedTools)]
    public List<string>? ApprovalTools { get; init; }
}

/// <summary>
/// An agent as a self-contained document: the body of a create, the result of an export and the body of
/// an import. It carries no ids and no workspace, so it can move between workspaces and installations.
/// </summary>
public sealed record AgentDocument : AgentDefinitionInput
{
    [Required, StringLength(Agent.NameMaxLength, MinimumLength = 1)]
    public string Name { get; init; } = "";

    [Required, AllowedValues(AgentKinds.Llm, AgentKinds.Tool, AgentKinds.Webhook, ErrorMessage = AgentContracts.KindMessage)]
    public string Kind { get; init; } = "";

    /// <summary>The document format, <c>agent/v1</c>: set by an export, required by an import, optional on a create.</summary>
    [AllowedValues(null, AgentContracts.DocumentFormat, ErrorMessage = "The only document format is 'agent/v1'."), JsonPropertyOrder(-1)]
    public string? Agentry { get; init; }
}

public sealed record UpdateAgentRequest : AgentDefinitionInput
{
    [StringLength(Agent.NameMaxLength, MinimumLength = 1)]
    public string? Name { get; init; }

    [AllowedValues(null, AgentKinds.Llm, AgentKinds.Tool, AgentKinds.Webhook, ErrorMessage = AgentContracts.KindMessage)]
    public string? Kind { get; init; }
}

/// <summary>Limits as sent: a limit left out takes its default on create and keeps its value on update.</summary>
public sealed record AgentLimitsInput(
    [Range(1, 100)] int? MaxSteps = null,
    [Range(1, 1_000_000)] int? MaxTokens = null,
    [Range(1, 3_600)] int? TimeoutSeconds = null);

/// <summary>How far one run of the agent may go.</summary>
public sealed record AgentLimits(int MaxSteps = 10, int MaxTokens = 8_192, int TimeoutSeconds = 300);

/// <summary>
/// A URL Agentry posts to, signed with <see cref="Secret"/>: where a <c>webhook</c> agent sends its work, or
/// where an agent's finished tasks are announced. The secret is write-only: sent on a create or an update
/// (generated when a hook has none), shown by that one response and never again. It is stored in the
/// definition (the database holds it either way); responses and exports map it away.
/// </summary>
public sealed record AgentWebhook(
    [Required] string Url,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Secret = null);

/// <summary>A webhook as responses show it; <see cref="Secret"/> only in the response of the change that set it.</summary>
public sealed record AgentWebhookResponse(
    string Url, bool SecretSet, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Secret = null);

public sealed record AgentResponse(
    Guid Id, string Name, string Kind, string? Description, string? Model, string? SystemPrompt,
    IReadOnlyList<string> AllowedTools, IReadOnlyList<string> KnowledgeCollections, AgentLimits Limits, AgentWebhookResponse? Webhook,
    AgentWebhookResponse? OnComplete, string? Tool, IReadOnlyList<string> ApprovalTools, int Version, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>One immutable version: the agent's name, kind and definition as that change left them.</summary>
public sealed record AgentVersionResponse(
    Guid AgentId, int Version, string Name, string Kind, AgentDefinitionResponse Definition, DateTime CreatedAt, Guid? CreatedBy);

/// <summary>A stored definition as responses show it: the same fields, with the hooks' secrets left out.</summary>
public sealed record AgentDefinitionResponse(
    string? Description, string? Model, string? SystemPrompt, IReadOnlyList<string> AllowedTools,
    IReadOnlyList<string> KnowledgeCollections, AgentLimits Limits, AgentWebhookResponse? Webhook, AgentWebhookResponse? OnComplete,
    string? Tool, IReadOnlyList<string> ApprovalTools);

/// <summary>
/// Everything about an agent but its name and kind; stored whole as JSON. Fields added later are optional, so
/// definitions stored before them still read.
/// </summary>
public sealed record AgentDefinition(
    string? Description, string? Model, string? SystemPrompt, IReadOnlyList<string> AllowedTools,
    IReadOnlyList<string> KnowledgeCollections, AgentLimits Limits, AgentWebhook? Webhook, AgentWebhook? OnComplete = null,
    string? Tool = null, IReadOnlyList<string>? ApprovalTools = null)
{
    /// <summary>The tools whose calls by this agent wait for a person's approval (none for a definition stored before the field existed).</summary>
    [JsonIgnore]
    public IReadOnlyList<string> HeldTools => ApprovalTools ?? [];

    public string ToJson() => JsonSerializer.Serialize(this, JsonSerializerOptions.Web);

    public static AgentDefinition Parse(string json) => JsonSerializer.Deserialize<AgentDefinition>(json, JsonSerializerOptions.Web)!;
}

internal static class AgentContracts
{
    public const string DocumentFormat = "agent/v1";
    public const string KindMessage = "The kind must be one of: llm, tool, webhook.";
    public const int DescriptionMaxLength = 1_000;
    public const int ModelMaxLength = 200;
    public const int SystemPromptMaxLength = 32_000;
    public const int MaxAllowedTools = 100;
    public const int MaxKnowledgeCollections = 50;
    public const int ToolNameMaxLength = 200;
    public const int SecretMinLength = 16;
    public const int SecretMaxLength = 200;
    private const int EntryMaxLength = 200;
    private const string SecretMarker = "whsec_";

    /// <summary>A new agent's definition; a hook sent without a secret gets a generated one.</summary>
    public static AgentDefinition ToDefinition(this AgentDocument d) => new(
        d.Description, d.Model, d.SystemPrompt, d.AllowedTools ?? [], d.KnowledgeCollections ?? [],
        Merge(new AgentLimits(), d.Limits), Keep(null, d.Webhook), Keep(null, d.OnComplete), d.Tool, d.ApprovalTools ?? []);

    /// <summary>
    /// The definition after an update: what was sent replaces, what was left out stays. A webhook is kept
    /// only while the agent stays a webhook agent. A hook sent without a secret keeps the one it had.
    /// </summary>
    public static AgentDefinition Apply(this AgentDefinition current, UpdateAgentRequest r, string kind) => new(
        r.Description ?? current.Description,
        r.Model ?? current.Model,
        r.SystemPrompt ?? current.SystemPrompt,
        r.AllowedTools ?? current.AllowedTools,
        r.KnowledgeCollections ?? current.KnowledgeCollections,
        Merge(current.Limits, r.Limits),
        kind == AgentKinds.Webhook ? Keep(current.Webhook, r.Webhook) : r.Webhook,
        Keep(current.OnComplete, r.OnComplete),
        kind == AgentKinds.Tool ? r.Tool ?? current.Tool : r.Tool,
        r.ApprovalTools ?? current.HeldTools);

    /// <summary>The hook as sent (or as it was), with a secret: the one sent, else the current one, else a new one.</summary>
    private static AgentWebhook? Keep(AgentWebhook? current, AgentWebhook? sent) => (sent ?? current) switch
    {
        null => null,
        { Secret: not null } hook => hook,
        var hook => hook with { Secret = current?.Secret ?? NewSecret() },
    };

    /// <summary><c>whsec_</c> and 32 base62 characters (190 bits), in the same alphabet as API keys.</summary>
    private static string NewSecret() => SecretMarker + RandomNumberGenerator.GetString(Identity.ApiKeySecret.Base62, 32);

    /// <summary>Rules across fields, which data annotations on single fields cannot state; empty when valid.</summary>
    public static Dictionary<string, string[]> Check(string kind, AgentDefinition d)
    {
        var errors = new Dictionary<string, string[]>();
        if (kind == AgentKinds.Llm && string.IsNullOrWhiteSpace(d.Model))
        {
            errors["model"] = ["An llm agent needs a model."];
        }
        if (kind == AgentKinds.Webhook && d.Webhook is null)
        {
            errors["webhook"] = ["A webhook agent needs a webhook with a url."];
        }
        if (kind != AgentKinds.Webhook && d.Webhook is not null)
        {
            errors["webhook"] = ["Only webhook agents take a webhook."];
        }
        CheckHook(errors, "webhook", d.Webhook);
        CheckHook(errors, "onComplete", d.OnComplete);
        CheckEntries(errors, "allowedTools", d.AllowedTools);
        CheckEntries(errors, "knowledgeCollections", d.KnowledgeCollections);
        CheckTools(errors, kind, d);
        return errors;
    }

    /// <summary>
    /// A <c>tool</c> agent names one qualified tool, and only it may be held for approval; an <c>llm</c> agent holds
    /// only tools it is allowed (holding any other would say nothing: it is never called); a webhook agent calls no tools.
    /// </summary>
    private static void CheckTools(Dictionary<string, string[]> errors, string kind, AgentDefinition d)
    {
        if (kind == AgentKinds.Tool && d.Tool is null)
        {
            errors["tool"] = ["A tool agent needs a tool: its qualified name, {server}__{tool} (GET /api/v1/tools lists them)."];
        }
        else if (kind == AgentKinds.Tool && !Tools.ToolDescriptor.TrySplit(d.Tool!, out _, out _))
        {
            errors["tool"] = ["The tool must be a qualified name, {server}__{tool}."];
        }
        if (kind != AgentKinds.Tool && d.Tool is not null)
        {
            errors["tool"] = ["Only tool agents take a tool; llm agents list theirs in allowedTools."];
        }
        var held = d.HeldTools;
        CheckEntries(errors, "approvalTools", held);
        for (var i = 0; i < held.Count; i++)
        {
            var problem = kind switch
            {
                AgentKinds.Llm when !d.AllowedTools.Contains(held[i], StringComparer.Ordinal) => "Each entry must be one of the agent's allowedTools.",
                AgentKinds.Tool when held[i] != d.Tool => "A tool agent can hold only its own tool.",
                AgentKinds.Webhook => "Webhook agents call no tools.",
                _ => null,
            };
            if (problem is not null && !errors.ContainsKey($"approvalTools[{i}]"))
            {
                errors[$"approvalTools[{i}]"] = [problem];
            }
        }
    }

    /// <summary>The agent as reads show it: no secrets.</summary>
    public static AgentResponse ToResponse(this Agent a) => a.ToResponse(AgentDefinition.Parse(a.Definition), reveal: false, before: null);

    /// <summary>
    /// The response of a create (<paramref name="before"/> null) or an update: it shows, this once, each secret
    /// the change set, so a client that let the server generate one learns it.
    /// </summary>
    public static AgentResponse ToWriteResponse(this Agent a, AgentDefinition? before) =>
        a.ToResponse(AgentDefinition.Parse(a.Definition), reveal: true, before);

    private static AgentResponse ToResponse(this Agent a, AgentDefinition d, bool reveal, AgentDefinition? before) =>
        new(a.Id, a.Name, a.Kind, d.Description, d.Model, d.SystemPrompt, d.AllowedTools, d.KnowledgeCollections, d.Limits,
            View(d.Webhook, reveal && d.Webhook?.Secret != before?.Webhook?.Secret),
            View(d.OnComplete, reveal && d.OnComplete?.Secret != before?.OnComplete?.Secret),
            d.Tool, d.HeldTools, a.Version, a.CreatedAt, a.UpdatedAt);

    public static AgentVersionResponse ToResponse(this AgentVersion v)
    {
        var d = AgentDefinition.Parse(v.Definition);
        return new(v.AgentId, v.Version, v.Name, v.Kind,
            new(d.Description, d.Model, d.SystemPrompt, d.AllowedTools, d.KnowledgeCollections, d.Limits, View(d.Webhook, false), View(d.OnComplete, false),
                d.Tool, d.HeldTools),
            v.CreatedAt, v.CreatedBy);
    }

    private static AgentWebhookResponse? View(AgentWebhook? hook, bool reveal) =>
        hook is null ? null : new(hook.Url, hook.Secret is not null, reveal ? hook.Secret : null);

    public static AgentDocument ToExport(this Agent a)
    {
        var d = AgentDefinition.Parse(a.Definition);
        return new AgentDocument
        {
            Agentry = DocumentFormat,
            Name = a.Name,
            Kind = a.Kind,
            Description = d.Description,
            Model = d.Model,
            SystemPrompt = d.SystemPrompt,
            AllowedTools = [.. d.AllowedTools],
            KnowledgeCollections = [.. d.KnowledgeCollections],
            Limits = new AgentLimitsInput(d.Limits.MaxSteps, d.Limits.MaxTokens, d.Limits.TimeoutSeconds),
            // Without secrets: an export is meant to be shared; the import generates new ones.
            Webhook = d.Webhook is null ? null : new AgentWebhook(d.Webhook.Url),
            OnComplete = d.OnComplete is null ? null : new AgentWebhook(d.OnComplete.Url),
            Tool = d.Tool,
            ApprovalTools = [.. d.HeldTools],
        };
    }

    private static AgentLimits Merge(AgentLimits current, AgentLimitsInput? sent) => new(
        sent?.MaxSteps ?? current.MaxSteps, sent?.MaxTokens ?? current.MaxTokens, sent?.TimeoutSeconds ?? current.TimeoutSeconds);

    /// <summary>
    /// The hook's URL and secret. The secret's length is checked here, not by an annotation: request validation
    /// does not reach into this positional record, and a generated secret always passes anyway.
    /// </summary>
    private static void CheckHook(Dictionary<string, string[]> errors, string field, AgentWebhook? hook)
    {
        if (hook is null)
        {
            return;
        }
        if (!(Uri.TryCreate(hook.Url, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"))
        {
            errors[$"{field}.url"] = ["The url must be an absolute http or https URL."];
        }
        if (hook.Secret is { Length: < SecretMinLength or > SecretMaxLength } || string.IsNullOrWhiteSpace(hook.Secret))
        {
            errors[$"{field}.secret"] = [$"The secret must be {SecretMinLength}-{SecretMaxLength} characters."];
        }
    }

    private static void CheckEntries(Dictionary<string, string[]> errors, string field, IReadOnlyList<string> entries)
    {
        for (var i = 0; i < entries.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(entries[i]) || entries[i].Length > EntryMaxLength)
            {
                errors[$"{field}[{i}]"] = [$"Each entry must be 1-{EntryMaxLength} characters."];
            }
        }
    }
}
