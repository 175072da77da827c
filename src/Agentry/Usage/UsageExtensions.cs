namespace Agentry.Usage;

public static class UsageExtensions
{
    /// <summary>
    /// The usage ledger (section <c>Agentry:Usage</c>) and daily token budgets. Added before the features that call
    /// models, so that on a graceful stop it stops after them and writes the records of their last calls.
    /// </summary>
    public static IHostApplicationBuilder AddUsage(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<UsageOptions>().BindConfiguration(UsageOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<UsageLedger>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageLedger>());
        services.AddSingleton<TokenBudgets>();
        return builder;
    }
}
