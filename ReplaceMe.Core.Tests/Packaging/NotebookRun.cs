using System.Text;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// An executed notebook as dotnet-repl writes it (nbformat 4): the cells' sources, their text and HTML outputs, and
/// the errors of failed cells.
/// </summary>
internal sealed class NotebookRun
{
    public const string FeedLine = "#i \"nuget: ../../artifacts/packages\"";
    public const string PackageLine = "#r \"nuget: ReplaceMe.Core, 0.1.0\"";

    private NotebookRun(JsonArray cells) => Cells = cells;

    public JsonArray Cells { get; }

    public static NotebookRun Load(string path) =>
        new((JsonNode.Parse(File.ReadAllText(path))!["cells"] as JsonArray) ?? throw new InvalidDataException($"{path} has no cells array."));

    /// <summary>
    /// The notebook text with the repository's package lines (local feed <c>../../artifacts/packages</c>, version
    /// 0.1.0) pointed at another feed and version; fails when a line is missing so the notebooks keep the documented form.
    /// </summary>
    public static string RewritePackageSource(string notebookJson, string feedDir, string version)
    {
        if (!notebookJson.Contains(FeedLine.Replace("\"", "\\\"", StringComparison.Ordinal), StringComparison.Ordinal)
            || !notebookJson.Contains(PackageLine.Replace("\"", "\\\"", StringComparison.Ordinal), StringComparison.Ordinal))
            throw new InvalidDataException($"The notebook must reference the package as {FeedLine} and {PackageLine}.");
        var feed = JsonValue.Create($"nuget: {feedDir}")!.ToJsonString()[1..^1]; // JSON-escaped
        return notebookJson
            .Replace("nuget: ../../artifacts/packages", feed, StringComparison.Ordinal)
            .Replace("nuget: ReplaceMe.Core, 0.1.0\\\"", $"nuget: ReplaceMe.Core, {version}\\\"", StringComparison.Ordinal);
    }

    /// <summary>Every failed code cell: its first source line and the error text (error outputs and stderr).</summary>
    public IReadOnlyList<string> Errors()
    {
        var errors = new List<string>();
        foreach (var cell in Cells)
        {
            var text = new StringBuilder();
            foreach (var output in Outputs(cell))
            {
                var type = (string?)output["output_type"];
                if (type == "error")
                    text.AppendLine($"{output["ename"]}: {output["evalue"]}\n{Join(output["traceback"])}");
                else if (type == "stream" && (string?)output["name"] == "stderr")
                    text.AppendLine(Join(output["text"]));
            }
            if (text.Length > 0) errors.Add($"cell '{FirstLine(cell)}':\n{text}");
        }
        return errors;
    }

    /// <summary>All text/plain outputs and stdout, concatenated.</summary>
    public string PlainText() => string.Join("\n", Cells.SelectMany(Outputs).Select(o =>
        (string?)o["output_type"] == "stream" ? Join(o["text"]) : Join(o["data"]?["text/plain"])));

    /// <summary>Number of inline PNG images (base64 &lt;img&gt; in HTML outputs or image/png outputs).</summary>
    public int InlinePngCount() => Cells.SelectMany(Outputs).Count(o =>
        Join(o["data"]?["text/html"]).Contains("data:image/png;base64,", StringComparison.Ordinal) || o["data"]?["image/png"] is not null);

    /// <summary>Length of the longest inline PNG (base64 characters), to tell a real plot from an empty one.</summary>
    public int LargestPngBase64Length() => Cells.SelectMany(Outputs)
        .Select(o => Join(o["data"]?["text/html"]))
        .Select(html => html.IndexOf("base64,", StringComparison.Ordinal) is var at and >= 0
            ? html[(at + 7)..].TakeWhile(c => c != '"').Count() : 0)
        .DefaultIfEmpty(0).Max();

    private static IEnumerable<JsonNode> Outputs(JsonNode? cell) =>
        (cell?["outputs"] as JsonArray)?.Where(o => o is not null).Select(o => o!) ?? [];

    private static string FirstLine(JsonNode? cell) => Join(cell?["source"]).Split('\n').FirstOrDefault(l => l.Trim().Length > 0) ?? "";

    private static string Join(JsonNode? node) => node switch
    {
        null => "",
        JsonArray a => string.Concat(a.Select(x => (string?)x)),
        _ => (string?)node ?? "",
    };
}
