using System.Text.Json;
using Microsoft.Extensions.AI;
using ModelContextProtocol;

namespace Agentry.Tools;

/// <summary>
/// An agent's tools from the catalog: each an <see cref="AIFunction"/> named by its qualified name, with the tool's own
/// description and input schema (so the model sees the real schema), whose every invocation goes through
/// <see cref="IToolCatalog.CallAsync"/> as the agent's caller: validated, timed out, counted and audited there.
/// </summary>
internal sealed class McpAgentTools(IToolCatalog catalog) : IAgentTools
{
    public async ValueTask<IReadOnlyList<AIFunction>> FindAsync(ToolCaller caller, IReadOnlyList<string> names, CancellationToken ct)
    {
        var functions = new List<AIFunction>(names.Count);
        foreach (var name in names.Distinct(StringComparer.Ordinal))
        {
            if (ToolDescriptor.TrySplit(name, out var server, out var tool)
                && await catalog.FindAsync(caller.WorkspaceId, server, tool, ct) is { } found)
            {
                functions.Add(new CatalogFunction(found, caller, catalog));
            }
        }
        return functions;
    }

    private sealed class CatalogFunction(ToolDescriptor tool, ToolCaller caller, IToolCatalog catalog) : AIFunction
    {
        public override string Name => tool.QualifiedName;

        public override string Description => tool.Description ?? "";

        public override JsonElement JsonSchema => tool.InputSchema;

        /// <summary>The tool's result as MCP shapes it (content items, structured content, isError): what the model reads next.</summary>
        protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
        {
            var json = JsonSerializer.SerializeToElement(
                arguments.ToDictionary(a => a.Key, a => a.Value), McpJsonUtilities.DefaultOptions);
            var result = await catalog.CallAsync(tool, json, caller, cancellationToken);
            return JsonSerializer.SerializeToElement(result, McpJsonUtilities.DefaultOptions);
        }
    }
}
