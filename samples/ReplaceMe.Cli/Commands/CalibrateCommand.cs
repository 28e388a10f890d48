using System.CommandLine;
using System.Globalization;
using ReplaceMe.Core;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Cli.Commands;

/// <summary>
/// <c>replaceme calibrate</c>: the mergeable statistics of one cut on one calibration shard, written as a safetensors
/// file; <c>prune --from-stats</c> merges any number of them and fits T (docs/distributed.md).
/// </summary>
internal static class CalibrateCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var calibration = new CalibrationArgs();
        var cut = new Option<string>("--cut") { Description = "The cut START:END (0-based, half-open [START, END); the transform folds into block START−1)", Required = true };
        var output = CliOptions.Out("Statistics file to write (.safetensors)");
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the statistics file if it exists" };
        CliOptions.Require(cut, s => TryParseCut(s, out _), "--cut must be START:END with 1 ≤ START < END, e.g. 20:28.");
        var command = new Command("calibrate", "Accumulate the least-squares statistics and distances of one cut on this calibration shard, for prune --from-stats.")
        {
            model, cut, output, overwrite,
        };
        calibration.AddTo(command);
        command.SetAction((parse, ct) => CliErrors.RunAsync(context, async () =>
        {
            var outPath = parse.GetValue(output)!;
            if (Directory.Exists(outPath)) throw new IOException($"--out '{outPath}' is a folder; expected a statistics file name.");
            if (File.Exists(outPath) && !parse.GetValue(overwrite))
                throw new IOException($"Statistics file '{outPath}' already exists; pass --overwrite to replace it.");
            if (!TryParseCut(parse.GetValue(cut), out var blockCut))
                throw new ArgumentException("--cut must be START:END with 1 ≤ START < END, e.g. 20:28.");
            var modelDir = parse.GetValue(model)!;
            var (decoder, tokenizer) = CliModels.Load(modelDir);
            using (decoder)
            {
                blockCut.Validate(decoder.BlockCount);
                calibration.CheckAgainst(parse, decoder.Config);
                var identity = ModelIdentity.Of(modelDir);
                var (batches, source) = await calibration.LoadAsync(parse, decoder, tokenizer, ct).ConfigureAwait(false);
                using var ownedBatches = batches;
                using var stats = CutStatistics.Collect(decoder, blockCut, batches, identity, cancellationToken: ct);
                stats.Save(outPath, parse.GetValue(overwrite), ct);
                var inv = CultureInfo.InvariantCulture;
                context.Out.WriteLine($"calibration: {source}; {stats.Sequences} sequences, {stats.Tokens} tokens");
                context.Out.WriteLine(string.Create(inv, $"cut {blockCut}: angular distance {stats.MeanLastTokenDistance:G4} (last token), {stats.MeanDistance:G4} (all tokens)"));
                context.Out.WriteLine($"wrote {Path.GetFullPath(outPath)}");
            }
            return 0;
        }));
        return command;
    }

    /// <summary>Parses START:END into a cut with 1 ≤ START &lt; END.</summary>
    public static bool TryParseCut(string? text, out BlockCut cut)
    {
        cut = default;
        var parts = (text ?? "").Split(':');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int start)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int end)
            || start < 1 || end <= start)
            return false;
        cut = new BlockCut(start, end);
        return true;
    }
}
