using System.Text;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// An executed notebook as dotnet-repl writes it (nbformat 4): the cells' sources, their text and HTML outputs, and
/// the errors of failed cells.
/// </summary>
internal sealed class NotebookRun
{
    /// <summary>The first code cell's call that adds the package source it found (artifacts/packages at or above the working directory).</summary>
    public const string FeedSubmission = "await Kernel.Root.SendAsync(new SubmitCode($\"#i \\\"nuget: {packageFeed}\\\"\", \"csharp\"));";
    public const string PackageLine = "#r \"nuget: ReplaceMe.Core, 0.1.0\"";

    private NotebookRun(JsonArray cells) => Cells = cells;

    public JsonArray Cells { get; }

    public static NotebookRun Load(string path) =>
        new((JsonNode.Parse(File.ReadAllText(path))!["cells"] as JsonArray) ?? throw new InvalidDataException($"{path} has no cells array."));

    /// <summary>
    /// The notebook with its ReplaceMe.Core reference (version 0.1.0) pointed at another version, so that a package of
    /// that version cached by an earlier run is never used. Fails when the documented form is missing: the feed cell that
    /// finds artifacts/packages and adds it by absolute path, and the package line.
    /// </summary>
    public static string RewritePackageVersion(string notebookJson, string version)
    {
        var cells = (JsonNode.Parse(notebookJson)?["cells"] as JsonArray) ?? throw new InvalidDataException("The notebook has no cells array.");
        var code = cells.Where(c => (string?)c?["cell_type"] == "code").Select(c => Join(c?["source"])).ToList();
        if (code.Count < 2 || !code[0].Contains(FeedSubmission, StringComparison.Ordinal) || !code[1].Contains(PackageLine, StringComparison.Ordinal))
            throw new InvalidDataException($"The notebook's first code cell must add artifacts/packages with {FeedSubmission} and the second must hold {PackageLine}.");
        return notebookJson.Replace("nuget: ReplaceMe.Core, 0.1.0\\\"", $"nuget: ReplaceMe.Core, {version}\\\"", StringComparison.Ordinal);
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

    /// <summary>Length of the longest inline PNG (base64 characters, image/png output or HTML &lt;img&gt;), to tell a real plot from an empty one.</summary>
    public int LargestPngBase64Length() => Cells.SelectMany(Outputs)
        .Select(o => o["data"]?["image/png"] is { } png ? Join(png).Trim().Length
            : Join(o["data"]?["text/html"]) is var html && html.IndexOf("base64,", StringComparison.Ordinal) is var at and >= 0
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
