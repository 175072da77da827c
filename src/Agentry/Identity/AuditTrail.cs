using System.Data.Common;
using System.Diagnostics.Metrics;
using System.Security.Claims;
using System.Text.Json;
using Agentry.Data;
using Agentry.Hosting;
using Agentry.Workspaces;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Agentry.Identity;

/// <summary>Who acted: a user, an API key, or (a failed sign-in) only the name that was given.</summary>
public sealed record AuditActor(Guid? UserId, Guid? KeyId, string? Name)
{
    public static AuditActor Of(User user) => new(user.Id, null, user.Email);

    public static AuditActor Of(ClaimsPrincipal principal) => new(
        Guid.TryParse(principal.GetClaim(Claims.Subject), out var user) ? user : null,
        Guid.TryParse(principal.GetClaim(AgentryClaims.KeyId), out var key) ? key : null,
        principal.GetClaim(Claims.Email) ?? principal.GetClaim(Claims.Name));
}

/// <summary>
/// Appends security events to <c>audit_events</c>, taking the actor, IP and user agent from the current
/// request. Each event is written by a database context of its own, so it neither rides on nor waits for
/// the handler's unsaved changes, and a business write that fails does not take the event with it.
/// </summary>
internal sealed class AuditTrail(
    IServiceScopeFactory scopes, IHttpContextAccessor http, TimeProvider clock, AuditQueue queue, AuditMetrics metrics, ILogger<AuditTrail> logger)
{
    /// <summary>Records an event whose actor is the authenticated caller (or nobody, for an anonymous request).</summary>
    public Task RecordAsync(string action, string outcome, Guid? workspaceId = null, string? target = null, object? detail = null) =>
        RecordAsync(AuditActor.Of(http.HttpContext?.User ?? new ClaimsPrincipal()), action, outcome, workspaceId, target, detail);

    /// <summary>
    /// Records an event with an explicit actor, e.g. the user a sign-in is for. Never throws for a database
    /// failure and is not cancelled by the request: the change it describes has already happened (see
    /// docs/design-notes.md, "Audit"). A failed write is logged in full and counted instead.
    /// </summary>
    public async Task RecordAsync(AuditActor actor, string action, string outcome, Guid? workspaceId = null, string? target = null, object? detail = null)
    {
        var entry = Entry(actor, action, outcome, workspaceId, target, detail);
        await WriteAsync(scopes, [entry], metrics, logger);
    }

    /// <summary>
    /// Hands an event to this node's <see cref="AuditQueue"/>, which writes it with others within its flush interval: for
    /// events as frequent as the calls they describe (tool calls), whose callers should not wait for a commit each.
    /// </summary>
    public ValueTask QueueAsync(AuditActor actor, string action, string outcome, Guid? workspaceId = null, string? target = null, object? detail = null) =>
        queue.EnqueueAsync(Entry(actor, action, outcome, workspaceId, target, detail));

    private AuditEvent Entry(AuditActor actor, string action, string outcome, Guid? workspaceId, string? target, object? detail)
    {
        var context = http.HttpContext;
        var at = clock.UtcNow();
        return new AuditEvent
        {
            Id = Ids.New(new DateTimeOffset(at)),
            At = at,
            Action = action,
            Outcome = outcome,
            ActorUserId = actor.UserId,
            ActorKeyId = actor.KeyId,
            ActorName = Truncate(actor.Name, AuditEvent.ActorNameMaxLength),
            WorkspaceId = workspaceId,
            Target = Truncate(target, AuditEvent.TargetMaxLength),
            Ip = context?.Connection.RemoteIpAddress is { } ip ? (ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip).ToString() : null,
            UserAgent = Truncate(context?.Request.Headers.UserAgent.ToString() is { Length: > 0 } agent ? agent : null, AuditEvent.UserAgentMaxLength),
            Detail = Serialize(detail),
        };
    }

    /// <summary>Writes events in one transaction; a failure is logged in full (each event) and counted, never thrown.</summary>
    internal static async Task WriteAsync(IServiceScopeFactory scopes, IReadOnlyList<AuditEvent> entries, AuditMetrics metrics, ILogger logger)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.AuditEvents.AddRange(entries);
            await db.SaveChangesAsync(CancellationToken.None);
            foreach (var entry in entries)
            {
                metrics.Recorded(entry.Action, entry.Outcome);
            }
        }
        catch (Exception ex) when (ex is DbException or DbUpdateException or TimeoutException)
        {
            foreach (var entry in entries)
            {
                metrics.Lost(entry.Action);
                IdentityLog.AuditWriteFailed(logger, ex, entry.Action, entry.Outcome, entry.ActorUserId, entry.ActorKeyId,
                    entry.ActorName, entry.WorkspaceId, entry.Target, entry.Ip, entry.Detail);
            }
        }
    }

    /// <summary>
    /// Middleware around authorization and the endpoints: every 403 an authenticated caller receives, whether
    /// from a policy or from a handler, becomes a <c>permission.denied</c> event.
    /// </summary>
    internal static async Task RecordDenialsAsync(HttpContext context, RequestDelegate next)
    {
        await next(context);
        if (context.Response.StatusCode != StatusCodes.Status403Forbidden || context.User.Identity?.IsAuthenticated != true)
        {
            return;
        }
        var endpoint = context.GetEndpoint();
        // The workspace the endpoint's access rule names (route or query value), as the rule itself reads it.
        var workspaceParameter = endpoint?.Metadata.GetMetadata<WorkspaceRoleRequirement>()?.RouteValue ?? "workspaceId";
        var named = context.GetRouteValue(workspaceParameter) as string ?? context.Request.Query[workspaceParameter].FirstOrDefault();
        var workspaceId = Guid.TryParse(named, out var id) ? id
            : context.Items.TryGetValue(typeof(CurrentWorkspace), out var current) ? current as Guid?
            : null;
        var route = (endpoint as RouteEndpoint)?.RoutePattern.RawText;
        await context.RequestServices.GetRequiredService<AuditTrail>().RecordAsync(
            AuditActions.PermissionDenied, AuditOutcomes.Denied, workspaceId, $"{context.Request.Method} {context.Request.Path}", new { route });
    }

    private static string? Serialize(object? detail)
    {
        if (detail is null)
        {
            return null;
        }
        var json = JsonSerializer.Serialize(detail, JsonSerializerOptions.Web);
        return json.Length <= AuditEvent.DetailMaxLength ? json : """{"truncated":true}""";
    }

    private static string? Truncate(string? value, int length) => value is { Length: var n } && n > length ? value[..length] : value;
}

/// <summary><c>audit_events_total{action,outcome}</c>, and the events that could not be written.</summary>
internal sealed class AuditMetrics
{
    private readonly Counter<long> _recorded;
    private readonly Counter<long> _lost;

    public AuditMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(ApiMetrics.MeterName);
        _recorded = meter.CreateCounter<long>("audit_events_total", description: "Audit events recorded");
        _lost = meter.CreateCounter<long>("audit_write_failures_total", description: "Audit events that could not be written (they are in the error log)");
        // Exported as 0 from the start: a counter that first appears at 1 shows no increase() to the alert on it.
        _lost.Add(0);
    }

    public void Recorded(string action, string outcome) =>
        _recorded.Add(1, new KeyValuePair<string, object?>("action", action), new KeyValuePair<string, object?>("outcome", outcome));

    public void Lost(string action) => _lost.Add(1, new KeyValuePair<string, object?>("action", action));
}
