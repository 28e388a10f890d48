using System.Text.RegularExpressions;

namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// Reads the C# code blocks of the Markdown docs and the marked snippets of samples/ReplaceMe.Snippets (the compiled
/// project that holds every docs snippet between <c>// &lt;snippet:NAME&gt;</c> and <c>// &lt;/snippet:NAME&gt;</c>).
/// </summary>
internal static partial class DocSnippets
{
    public static string SnippetsProjectDir => Path.Combine(TestPaths.RepoRoot, "samples", "ReplaceMe.Snippets");

    /// <summary>Every ```csharp / ```cs block of a Markdown file, normalised.</summary>
    public static IReadOnlyList<string> CodeBlocks(string markdownPath) =>
        FencedCSharp().Matches(File.ReadAllText(markdownPath)).Select(m => Normalize(m.Groups["code"].Value)).ToList();

    /// <summary>Every marked snippet of the snippets project, by name, normalised (common indentation removed).</summary>
    public static IReadOnlyDictionary<string, string> CompiledSnippets()
    {
        var snippets = new Dictionary<string, string>();
        foreach (var file in Directory.EnumerateFiles(SnippetsProjectDir, "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                || file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)) continue;
            foreach (Match m in MarkedSnippet().Matches(File.ReadAllText(file)))
                snippets.Add(m.Groups["name"].Value, Normalize(m.Groups["code"].Value));
        }
        return snippets;
    }

    /// <summary>The snippet exactly as a user copies it (the raw text between the markers, indentation removed).</summary>
    public static string Snippet(string name) =>
        CompiledSnippets().TryGetValue(name, out var code) ? code + "\n" : throw new KeyNotFoundException($"No snippet '{name}' in {SnippetsProjectDir}.");

    /// <summary>LF line ends, no trailing spaces, no leading/trailing blank lines, common indentation removed.</summary>
    public static string Normalize(string code)
    {
        var lines = code.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').Select(l => l.TrimEnd()).ToList();
        while (lines.Count > 0 && lines[0].Length == 0) lines.RemoveAt(0);
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        int indent = lines.Where(l => l.Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        return string.Join("\n", lines.Select(l => l.Length >= indent ? l[indent..] : l));
    }

    [GeneratedRegex(@"^```(?:csharp|cs|c#)[ \t]*\r?\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex FencedCSharp();

    [GeneratedRegex(@"^[ \t]*// <snippet:(?<name>[\w-]+)>[ \t]*\r?\n(?<code>.*?)^[ \t]*// </snippet:\k<name>>", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex MarkedSnippet();
}
