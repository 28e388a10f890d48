using System.Globalization;
using System.Text.RegularExpressions;
using ReplaceMe.Cli;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary>
/// The results tables in README.md and docs/results.md are copied from demo runs. Each must name the command that
/// produced it (a command line the CLI accepts), and must have the shape of the demo's retention table: one row per
/// model of that setting, every score with its standard error, every column with its item count.
/// </summary>
public partial class ResultsTableTests
{
    [Fact]
    public void The_readme_table_names_the_main_command_and_has_the_demo_report_shape()
    {
        var tables = ProducedTables(Path.Combine(TestPaths.RepoRoot, "README.md"));
        var (command, rows) = Assert.Single(tables);
        Assert.Equal("demo", command); // the README's main command, default setting
        AssertDemoTable(command, rows);
    }

    [Fact]
    public void Every_results_table_in_the_docs_names_its_demo_command()
    {
        var tables = ProducedTables(Path.Combine(TestPaths.RepoRoot, "docs", "results.md"));
        Assert.Contains(tables, t => t.Command == "demo");
        Assert.Contains(tables, t => t.Command == "demo --quick");
        foreach (var (command, rows) in tables) AssertDemoTable(command, rows);
    }

    /// <summary>Each "Produced by `dotnet run … -- demo …`" line and the Markdown table that follows it.</summary>
    private static List<(string Command, List<string[]> Rows)> ProducedTables(string path)
    {
        var lines = File.ReadAllLines(path);
        var tables = new List<(string, List<string[]>)>();
        for (int i = 0; i < lines.Length; i++)
        {
            var m = ProducedBy().Match(lines[i]);
            if (!m.Success) continue;
            int j = i + 1;
            while (j < lines.Length && !lines[j].StartsWith('|')) j++;
            var rows = new List<string[]>();
            for (; j < lines.Length && lines[j].StartsWith('|'); j++)
                rows.Add(lines[j].Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray());
            Assert.True(rows.Count > 2, $"{Path.GetFileName(path)}:{i + 1}: no table after the command line");
            tables.Add((m.Groups[1].Value.Trim(), rows));
        }
        return tables;
    }

    private static void AssertDemoTable(string command, List<string[]> rows)
    {
        // The command is one the CLI accepts, as written.
        var root = CliApp.BuildRoot(new CliContext(TextWriter.Null, TextWriter.Null));
        var parsed = root.Parse(command.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(parsed.Errors);

        // Header: model, then columns with their item counts, then Avg and RP.
        var header = rows[0];
        Assert.Equal("model", header[0]);
        Assert.Equal(["Avg", "RP"], header[^2..]);
        Assert.All(header[1..^2], h => Assert.Matches(@"\(n=\d+\)$", h));

        // One row per model of the setting: the original, then estimator-n for n = 1..max-blocks, and the constrained
        // estimators (diagonal, orthonormal T) for the largest n only.
        int maxBlocks = MaxBlocks(command);
        var expected = new List<string> { "original" };
        for (int n = 1; n <= maxBlocks; n++) expected.AddRange(["lstsq-" + n, "cosine-" + n, "identity-" + n]);
        expected.AddRange(["diag-" + maxBlocks, "orthonormal-" + maxBlocks]);
        Assert.Equal(expected, rows.Skip(2).Select(r => r[0]));

        // Every score with its standard error; RP with its error except for the original.
        foreach (var row in rows.Skip(2))
        {
            foreach (var cell in row[1..^1]) Assert.Matches(@"^\d+\.\d+ ± \d+\.\d+( \(\d+\.\d %\))?$", cell);
            Assert.Matches(row[0] == "original" ? @"^100\.0 %$" : @"^\d+\.\d ± \d+\.\d %$", row[^1]);
        }
    }

    private static int MaxBlocks(string command)
    {
        var parts = command.Split(' ');
        int at = Array.IndexOf(parts, "--max-blocks");
        return at >= 0 ? int.Parse(parts[at + 1], CultureInfo.InvariantCulture) : 2;
    }

    [GeneratedRegex("Produced by `" + @"dotnet run --project samples/ReplaceMe\.Cli -c Release -- (demo[^`]*)`")]
    private static partial Regex ProducedBy();
}
