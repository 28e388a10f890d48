using System.CommandLine;
using System.Globalization;
using ReplaceMe.Cli.Plots;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme sweep</c>: one profile, then for every n up to --max-blocks the best cut and every estimator,
/// scored on held-out calibration; prints the table and the n a target asks for, optionally plots it.</summary>
internal static class SweepCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var calibration = new CalibrationArgs();
        var maxBlocks = new Option<int>("--max-blocks") { Description = "Try n = 1..K blocks removed (one cut each)", Required = true };
        var estimators = new Option<string>("--estimators") { Description = "Comma-separated: " + string.Join(", ", Strategies.EstimatorNames), DefaultValueFactory = _ => "lstsq" };
        var selector = new Option<string>("--selector") { Description = "How the cut for each n is chosen from the one profile: angular, cosine, bi", DefaultValueFactory = _ => "angular" };
        selector.AcceptOnlyFromAmong("angular", "cosine", "bi");
        var heldOut = new Option<double>("--held-out") { Description = "Fraction of calibration batches (the last ones) held out for scoring", DefaultValueFactory = _ => 0.2 };
        var targetPpl = new Option<string?>("--target-ppl-increase") { Description = "Recommend the largest n whose held-out perplexity stays within +X of the original (e.g. 10% or 0.1)" };
        var removeFraction = new Option<string?>("--remove-fraction") { Description = "Recommend removing this fraction of the blocks (e.g. 25% or 0.25), with its best estimator" };
        var plot = new Option<string?>("--plot") { Description = "Write the curve (perplexity vs blocks removed, one line per estimator) to FILE.png and FILE.svg" };
        CliOptions.Require(maxBlocks, k => k > 0, "--max-blocks must be ≥ 1.");
        CliOptions.Require(heldOut, f => f > 0 && f < 1, "--held-out must be in (0, 1).");
        var command = new Command("sweep", "Profile once, then for n = 1..K remove the best cut with each estimator and score it on held-out calibration: the table and curve to decide how far to prune.")
        {
            model, maxBlocks, estimators, selector, heldOut, targetPpl, removeFraction, plot,
        };
        calibration.AddTo(command);
        command.Validators.Add(result =>
        {
            if (result.GetResult(targetPpl) is not null && result.GetResult(removeFraction) is not null)
                result.AddError("Give at most one of --target-ppl-increase and --remove-fraction.");
        });
        command.SetAction((parse, ct) => CliErrors.RunAsync(context, async () =>
        {
            var names = parse.GetValue(estimators)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var name in names)
                if (!Strategies.EstimatorNames.Contains(name))
                    throw new ArgumentException($"--estimators: unknown estimator '{name}'; expected a comma-separated list of {string.Join(", ", Strategies.EstimatorNames)}.");
            var modelDir = parse.GetValue(model)!;
            var (decoder, tokenizer) = CliModels.Load(modelDir);
            SweepResult result;
            double? limit;
            using (decoder)
            {
                var options = new SweepOptions
                {
                    MaxBlocks = parse.GetValue(maxBlocks),
                    Estimators = [.. names.Select(n => Strategies.Estimator(n))],
                    Selector = Strategies.Selector(parse.GetValue(selector)!, null, 1),
                    HeldOutFraction = parse.GetValue(heldOut),
                    MaxPerplexityIncrease = Fraction(parse.GetValue(targetPpl), "--target-ppl-increase"),
                    RemoveFraction = Fraction(parse.GetValue(removeFraction), "--remove-fraction"),
                    Seed = parse.GetValue(calibration.Seed),
                };
                options.Validate(decoder.BlockCount);
                calibration.CheckAgainst(parse, decoder.Config);
                var (batches, source) = await calibration.LoadAsync(parse, decoder, tokenizer, ct).ConfigureAwait(false);
                using var owned = batches;
                context.Out.WriteLine($"calibration: {source}; {batches.Count} batches, the last {options.HeldOutFraction.ToString(CultureInfo.InvariantCulture)} held out for scoring");
                result = PruningSweep.Run(() => DecoderModel.FromPretrained(modelDir), batches, options, cancellationToken: ct);
                limit = options.MaxPerplexityIncrease is { } x ? result.OriginalPerplexity * (1 + x) : null;
            }
            Print(context.Out, result);
            if (parse.GetValue(plot) is string path)
            {
                var series = result.Rows.GroupBy(r => r.Estimator)
                    .Select(g => new KeyValuePair<string, IReadOnlyList<(int, double)>>(g.Key, [.. g.Select(r => (r.Blocks, r.Perplexity))]))
                    .ToList();
                var png = PlotWriter.PerplexityByBlocks(series, result.OriginalPerplexity, limit, path);
                context.Out.WriteLine($"wrote {Path.GetFullPath(png)} and {Path.GetFullPath(Path.ChangeExtension(png, ".svg"))}");
            }
            return 0;
        }));
        return command;
    }

    /// <summary>"10%" or "0.1" → 0.1; null stays null.</summary>
    private static double? Fraction(string? text, string option)
    {
        if (text is null) return null;
        var t = text.Trim();
        bool percent = t.EndsWith('%');
        if (percent) t = t[..^1];
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw new ArgumentException($"{option} '{text}' is not a number or percentage (e.g. 10% or 0.1).");
        return percent ? v / 100 : v;
    }

    private static void Print(TextWriter o, SweepResult r)
    {
        static string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        o.WriteLine($"original held-out perplexity {F(r.OriginalPerplexity)} (profile: {r.Profile.Sequences} sequences, computed once)");
        o.WriteLine("| n | estimator | cut | distance | held-out ppl | ratio | KL to original | s |");
        o.WriteLine("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var row in r.Rows)
            o.WriteLine($"| {row.Blocks} | {row.Estimator} | {row.Cut} | {row.Distance.ToString("F4", CultureInfo.InvariantCulture)} | {F(row.Perplexity)} | {F(row.Perplexity / r.OriginalPerplexity)} | {F(row.MeanKl)} | {row.Seconds.ToString("F1", CultureInfo.InvariantCulture)} |");
        o.WriteLine(r.Recommended is { } rec ? $"recommended: n = {rec.Blocks} ({r.Reason})" : $"no recommendation: {r.Reason}");
    }
}
