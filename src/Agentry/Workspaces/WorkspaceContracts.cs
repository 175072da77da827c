using System.ComponentModel.DataAnnotations;

namespace Agentry.Workspaces;

public sealed record CreateWorkspaceRequest(
    [Required, StringLength(Workspace.NameMaxLength, MinimumLength = 1)] string Name,
    [Required, RegularExpression(WorkspaceContracts.SlugPattern, ErrorMessage = WorkspaceContracts.SlugMessage)] string Slug,
    [StringLength(Workspace.DescriptionMaxLength)] string? Description);

/// <summary>Fields left out (or null) keep their value; a <c>dailyTokenBudget</c> of 0 removes the budget.</summary>
public sealed record UpdateWorkspaceRequest(
    [StringLength(Workspace.NameMaxLength, MinimumLength = 1)] string? Name,
    [StringLength(Workspace.DescriptionMaxLength)] string? Description,
    [Range(0, WorkspaceContracts.MaxDailyTokenBudget)] long? DailyTokenBudget = null);

public sealed record WorkspaceResponse(
    Guid Id, string Name, string Slug, string? Description, long? DailyTokenBudget, DateTime CreatedAt, DateTime UpdatedAt);

internal static class WorkspaceContracts
{
    public const string SlugPattern = "^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$";
    public const string SlugMessage = "The slug must be 1-64 lowercase letters, digits or inner hyphens.";

    /// <summary>A daily token budget's upper bound: a trillion tokens, far beyond any day's use, so any real budget fits.</summary>
    public const long MaxDailyTokenBudget = 1_000_000_000_000;

    public static WorkspaceResponse ToResponse(this Workspace w) =>
        new(w.Id, w.Name, w.Slug, w.Description, w.DailyTokenBudget, w.CreatedAt, w.UpdatedAt);
}
