using System.ComponentModel.DataAnnotations;
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

/// <summary>Where a <c>webhook</c> agent sends its work.</summary>
public sealed record AgentWebhook([Required] string Url);

public sealed record AgentResponse(
    Guid Id, string Name, string Kind, string? Description, string? Model, string? SystemPrompt,
    IReadOnlyList<string> AllowedTools, IReadOnlyList<string> KnowledgeCollections, AgentLimits Limits, AgentWebhook? Webhook,
    int Version, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>One immutable version: the agent's name, kind and definition as that change left them.</summary>
public sealed record AgentVersionResponse(
    Guid AgentId, int Version, string Name, string Kind, AgentDefinition Definition, DateTime CreatedAt, Guid? CreatedBy);

/// <summary>Everything about an agent but its name and kind; stored whole as JSON.</summary>
public sealed record AgentDefinition(
    string? Description, string? Model, string? SystemPrompt, IReadOnlyList<string> AllowedTools,
    IReadOnlyList<string> KnowledgeCollections, AgentLimits Limits, AgentWebhook? Webhook)
{
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
    private const int EntryMaxLength = 200;

    public static AgentDefinition ToDefinition(this AgentDocument d) => new(
        d.Description, d.Model, d.SystemPrompt, d.AllowedTools ?? [], d.KnowledgeCollections ?? [],
        Merge(new AgentLimits(), d.Limits), d.Webhook);

    /// <summary>The definition after an update: what was sent replaces, what was left out stays.</summary>
    /// <summary>A webhook is kept only while the agent stays a webhook agent.</summary>
    public static AgentDefinition Apply(this AgentDefinition current, UpdateAgentRequest r, string kind) => new(
        r.Description ?? current.Description,
        r.Model ?? current.Model,
        r.SystemPrompt ?? current.SystemPrompt,
        r.AllowedTools ?? current.AllowedTools,
        r.KnowledgeCollections ?? current.KnowledgeCollections,
        Merge(current.Limits, r.Limits),
        kind == AgentKinds.Webhook ? r.Webhook ?? current.Webhook : r.Webhook);

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
        if (d.Webhook is { } hook && !(Uri.TryCreate(hook.Url, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"))
        {
            errors["webhook.url"] = ["The url must be an absolute http or https URL."];
        }
        CheckEntries(errors, "allowedTools", d.AllowedTools);
        CheckEntries(errors, "knowledgeCollections", d.KnowledgeCollections);
        return errors;
    }

    public static AgentResponse ToResponse(this Agent a)
    {
        var d = AgentDefinition.Parse(a.Definition);
        return new(a.Id, a.Name, a.Kind, d.Description, d.Model, d.SystemPrompt, d.AllowedTools, d.KnowledgeCollections, d.Limits, d.Webhook,
            a.Version, a.CreatedAt, a.UpdatedAt);
    }

    public static AgentVersionResponse ToResponse(this AgentVersion v) =>
        new(v.AgentId, v.Version, v.Name, v.Kind, AgentDefinition.Parse(v.Definition), v.CreatedAt, v.CreatedBy);

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
            Webhook = d.Webhook,
        };
    }

    private static AgentLimits Merge(AgentLimits current, AgentLimitsInput? sent) => new(
        sent?.MaxSteps ?? current.MaxSteps, sent?.MaxTokens ?? current.MaxTokens, sent?.TimeoutSeconds ?? current.TimeoutSeconds);

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
