using Agentry.Tests.Chat;
using Agentry.Tests.Infrastructure;
using Agentry.Tests.Models;

namespace Agentry.Tests.Usage;

/// <summary>The tiny GGUF model as <c>local/tiny</c>, short replies, and the response cache on.</summary>
public static class UsageSettings
{
    public static IReadOnlyDictionary<string, string?> For(string model) => TinyModelFixture.LlamaCppSettings(("local", model)).With(new Dictionary<string, string?>
    {
        ["Agentry:Chat:MaxReplyTokens"] = ChatSettings.MaxReplyTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Agentry:Llm:ResponseCache:Enabled"] = "true",
    });
}

public sealed class SqliteUsageFixture : SqliteFixture
{
    private readonly string _model = ChatSettings.NewModelFile();

    protected override IReadOnlyDictionary<string, string?> Extra => UsageSettings.For(_model);
}

public sealed class PostgresUsageFixture : PostgresFixture
{
    private readonly string _model = ChatSettings.NewModelFile();

    protected override IReadOnlyDictionary<string, string?> Extra => UsageSettings.For(_model);
}
