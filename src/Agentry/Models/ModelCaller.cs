using Agentry.Identity;

namespace Agentry.Models;

/// <summary>
/// On whose behalf a model is called: what the usage ledger records with each call and whose daily token budgets the
/// call is checked against. The principal is a user, an API key or a service account; an agent run adds its agent.
/// </summary>
internal sealed record ModelCaller(Guid WorkspaceId, Guid? UserId, Guid? KeyId, Guid? AgentId = null, Guid? ServiceAccountId = null)
{
    /// <summary>The request's caller acting in <paramref name="workspaceId"/>, for <paramref name="agentId"/> when an agent is involved.</summary>
    public static ModelCaller Of(Caller caller, Guid workspaceId, Guid? agentId = null) => new(
        workspaceId, caller.UserId == Guid.Empty ? null : caller.UserId, caller.KeyId, agentId, caller.ServiceAccountId);

    /// <summary>The principal the ledger records: its kind (<see cref="Usage.UsagePrincipals"/>) and id; none for calls on nobody's behalf.</summary>
    public (string? Kind, Guid? Id) Principal => this switch
    {
        { UserId: { } user } => (Usage.UsagePrincipals.User, user),
        { KeyId: { } key } => (Usage.UsagePrincipals.ApiKey, key),
        { ServiceAccountId: { } account } => (Usage.UsagePrincipals.ServiceAccount, account),
        _ => (null, null),
    };
}
