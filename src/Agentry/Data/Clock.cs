namespace Agentry.Data;

public static class Clock
{
    /// <summary>
    /// Now, in UTC, at the microsecond precision PostgreSQL stores, so a value returned on create
    /// equals the value read back later on every provider.
    /// </summary>
    public static DateTime UtcNow(this TimeProvider clock)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        return now.AddTicks(-(now.Ticks % TimeSpan.TicksPerMicrosecond));
    }
}
