using System.Globalization;
using System.Text.RegularExpressions;
using ReplaceMe.Core.Llama2c;

namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// Runs every samples/notebooks/*.ipynb headlessly with dotnet-repl the way docs/getting-started.md documents it: from a
/// repository-like root whose artifacts/packages holds the packed ReplaceMe.Core, with the command
/// <c>dotnet-repl --run samples/notebooks/NAME --exit-after-run --output-path out.ipynb</c>. Only the package version is
/// rewritten (to this run's unique one). Fails with the failing cell's error, and checks each notebook's key outputs:
/// inline plots and the numbers it reports. The notebooks obtain stories15M themselves (no environment variable).
/// </summary>
[Collection(PackagedLibraryCollection.Name)]
public partial class NotebookTests(LocalPackageFeed feed)
{
    private const string ReplVersion = "0.3.259";
    private static readonly object InstallLock = new();
    private static readonly string NotebookDir = Path.Combine(TestPaths.RepoRoot, "samples", "notebooks");

    public static TheoryData<string> Notebooks() => new(NotebookNames());

    private static IEnumerable<string> NotebookNames() =>
        Directory.GetFiles(NotebookDir, "*.ipynb").Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal);

    [Fact]
    public void The_three_notebooks_of_the_product_exist()
    {
        var names = NotebookNames().ToList();
        Assert.Contains("01-prune-your-first-model.ipynb", names);
        Assert.Contains("02-bring-your-own-transformer.ipynb", names);
        Assert.Contains("03-lstsq-vs-cosine-vs-identity.ipynb", names);
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public void Notebook_runs_headlessly_and_shows_its_results(string name)
    {
        var run = Execute(name);
        Assert.True(run.InlinePngCount() >= ExpectedPlots(name), $"{name}: expected at least {ExpectedPlots(name)} inline PNG plots, found {run.InlinePngCount()}.");
        Assert.True(run.LargestPngBase64Length() > 10_000, $"{name}: the plots are implausibly small ({run.LargestPngBase64Length()} base64 chars).");
        var text = run.PlainText();
        switch (name)
        {
            case "01-prune-your-first-model.ipynb":
            {
                Assert.Contains("6 -> 5 blocks", text, StringComparison.Ordinal);
                var m = Match(PerplexityBeforeAfter(), text, name);
                double before = Number(m, "before"), after = Number(m, "after");
                Assert.InRange(before, 1.0, 50.0);
                Assert.True(after > before, $"Removing a block should cost some perplexity: {before} -> {after}.");
                Assert.Contains("reloaded 5 blocks", text, StringComparison.Ordinal);
                break;
            }
            case "02-bring-your-own-transformer.ipynb":
            {
                Assert.Contains("6 -> 5 blocks", text, StringComparison.Ordinal);
                var m = Match(ToyLosses(), text, name);
                Assert.True(Number(m, "original") < 0.5, $"The toy model did not learn its task:\n{m.Value}");
                Assert.True(Number(m, "lstsq") < Number(m, "removed"), $"Least squares should beat plain removal of the same block:\n{m.Value}");
                break;
            }
            case "03-lstsq-vs-cosine-vs-identity.ipynb":
            {
                var rows = EstimatorRows().Matches(text).ToDictionary(r => r.Groups["name"].Value, r => r);
                Assert.True(rows.Count == 3, $"Expected lstsq, cosine and identity rows, got:\n{text}");
                Assert.Single(rows.Values.Select(r => r.Groups["cut"].Value).Distinct());
                Assert.True(Number(rows["lstsq"], "ppl") < Number(rows["identity"], "ppl"),
                    $"Least squares should beat plain removal on stories15M: {rows["lstsq"].Value} vs {rows["identity"].Value}.");
                break;
            }
            case "04-run-pruned-model-with-llamasharp.ipynb":
            {
                Assert.Contains("6 -> 5 blocks", text, StringComparison.Ordinal);
                Assert.Contains("greedy texts equal: True", text, StringComparison.Ordinal);
                var d = Match(MaxLogProbDiff(), text, name);
                Assert.InRange(double.Parse(d.Groups["diff"].Value, CultureInfo.InvariantCulture), 0.0, 1e-2);
                break;
            }
            default:
                Assert.Fail($"{name} has no expected outputs in {nameof(NotebookTests)}; add them.");
                break;
        }
    }

    [Fact]
    public void Only_the_package_version_is_rewritten_and_the_documented_form_is_required()
    {
        var notebook = File.ReadAllText(Path.Combine(NotebookDir, "01-prune-your-first-model.ipynb"));
        var rewritten = NotebookRun.RewritePackageVersion(notebook, "0.1.0-ci.1");
        Assert.Contains("#r \\\"nuget: ReplaceMe.Core, 0.1.0-ci.1\\\"", rewritten, StringComparison.Ordinal);
        Assert.DoesNotContain("ReplaceMe.Core, 0.1.0\\\"", rewritten, StringComparison.Ordinal);
        Assert.Equal(notebook.Replace("ReplaceMe.Core, 0.1.0\\\"", "ReplaceMe.Core, 0.1.0-ci.1\\\"", StringComparison.Ordinal), rewritten);
        var relative = """{"cells": [{"cell_type": "code", "source": ["#i \"nuget: ../../artifacts/packages\"\n", "#r \"nuget: ReplaceMe.Core, 0.1.0\""]}]}""";
        Assert.Throws<InvalidDataException>(() => NotebookRun.RewritePackageVersion(relative, "1.0.0"));
        Assert.Throws<InvalidDataException>(() => NotebookRun.RewritePackageVersion("{}", "1.0.0"));
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public void Notebook_does_not_read_shared_folders_or_the_model_variable(string name)
    {
        var text = File.ReadAllText(Path.Combine(NotebookDir, name));
        Assert.DoesNotContain("REPLACEME_MODEL_SOURCE", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\"shared\"", text, StringComparison.Ordinal);
        Assert.DoesNotContain("#i \\\"nuget: ../", text, StringComparison.Ordinal);
        if (name.StartsWith("01", StringComparison.Ordinal) || name.StartsWith("03", StringComparison.Ordinal))
            Assert.Contains("Stories15M.Obtain()", text, StringComparison.Ordinal);
    }

    /// <summary>Runs the documented command in a folder laid out like the repository: artifacts/packages and samples/notebooks.</summary>
    private NotebookRun Execute(string name)
    {
        var repl = InstallRepl();
        var root = Path.Combine(feed.Root, "notebooks", Path.GetFileNameWithoutExtension(name));
        var packages = Path.Combine(root, "artifacts", "packages");
        var notebooks = Path.Combine(root, "samples", "notebooks");
        Directory.CreateDirectory(packages);
        Directory.CreateDirectory(notebooks);
        foreach (var nupkg in Directory.GetFiles(feed.Feed, "*.nupkg")) File.Copy(nupkg, Path.Combine(packages, Path.GetFileName(nupkg)), overwrite: true);
        File.WriteAllText(Path.Combine(notebooks, name), NotebookRun.RewritePackageVersion(File.ReadAllText(Path.Combine(NotebookDir, name)), feed.Version));
        var output = Path.Combine(root, "out.ipynb");
        // No REPLACEME_MODEL_SOURCE: the notebooks must obtain stories15M themselves, so the test clears it.
        var env = new Dictionary<string, string> { ["REPLACEME_MODEL_SOURCE"] = "" };
        try
        {
            ProcessRunner.Run(repl, ["--run", Path.Combine("samples", "notebooks", name), "--exit-after-run", "--output-path", "out.ipynb"], root, TimeSpan.FromMinutes(25), env);
        }
        catch (InvalidOperationException failure) when (File.Exists(output))
        {
            var errors = NotebookRun.Load(output).Errors();
            Assert.Fail($"{name} failed:\n{string.Join("\n", errors)}\n{failure.Message}");
        }
        Assert.True(File.Exists(output), $"dotnet-repl wrote no output notebook for {name}.");
        var run = NotebookRun.Load(output);
        var failed = run.Errors();
        Assert.True(failed.Count == 0, $"{name}: cells reported errors:\n{string.Join("\n", failed)}");
        return run;
    }

    private string InstallRepl()
    {
        var toolDir = Path.Combine(feed.Root, "tools");
        var exe = Path.Combine(toolDir, OperatingSystem.IsWindows() ? "dotnet-repl.exe" : "dotnet-repl");
        lock (InstallLock)
        {
            if (!File.Exists(exe))
                ProcessRunner.Run("dotnet", ["tool", "install", "dotnet-repl", "--version", ReplVersion, "--tool-path", toolDir], feed.Root, TimeSpan.FromMinutes(5));
        }
        return exe;
    }

    private static int ExpectedPlots(string name) => name.StartsWith("01", StringComparison.Ordinal) ? 2 : name.StartsWith("03", StringComparison.Ordinal) ? 2 : 1;

    private static Match Match(Regex regex, string text, string name)
    {
        var m = regex.Match(text);
        Assert.True(m.Success, $"{name}: no output matching /{regex}/ in:\n{text}");
        return m;
    }

    private static double Number(Match m, string group) => double.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"perplexity: (?<before>[0-9.]+) before, (?<after>[0-9.]+) after")]
    private static partial Regex PerplexityBeforeAfter();

    [GeneratedRegex(@"test loss: original (?<original>[0-9.]+), block \d+ simply removed (?<removed>[0-9.]+), ReplaceMe \(least squares\) (?<lstsq>[0-9.]+)")]
    private static partial Regex ToyLosses();

    [GeneratedRegex(@"max \|Δ log p\| over \d+ tokens: (?<diff>[0-9.]+E[-+]\d+)")]
    private static partial Regex MaxLogProbDiff();

    [GeneratedRegex(@"(?<name>lstsq|cosine|identity): cut (?<cut>\[\d+, \d+\)), perplexity (?<ppl>[0-9.]+)")]
    private static partial Regex EstimatorRows();
}
