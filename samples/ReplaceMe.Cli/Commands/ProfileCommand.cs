using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Selection;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme profile</c>: the distance between block outputs for every cut, the paper's layer-selection table.</summary>
internal static class ProfileCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var calibration = new CalibrationArgs();
        var blocks = new Option<int?>("--blocks", "-n") { Description = "Print the table for cuts of N blocks (default: every N as a start × N grid)" };
        var metric = new Option<string>("--metric") { Description = "angular (arccos(cos)/π, the reference) or cosine (1 − cos)", DefaultValueFactory = _ => "angular" };
        metric.AcceptOnlyFromAmong("angular", "cosine");
        var allTokens = new Option<bool>("--all-tokens") { Description = "Average over every valid token instead of the last one" };
        var json = new Option<string?>("--json") { Description = "Also write the profile as JSON to FILE" };
        var threads = CliOptions.Threads();
        CliOptions.Require(blocks, n => n is null or > 0, "--blocks must be ≥ 1.");
        var command = new Command("profile", "Measure the distance between the states around every possible cut (0-based cut [s, s+n) compares the outputs of blocks s−1 and s+n−1).")
        {
            model, blocks, metric, allTokens, json, threads,
        };
        calibration.AddTo(command);
        var memory = new MemoryArgs();
        memory.AddTo(command);
        command.SetAction((parse, ct) => CliErrors.RunAsync(context, async () =>
        {
            using var threadScope = CliOptions.UseThreads(parse, threads);
            var modelDir = parse.GetValue(model)!;
            var (residency, reason) = memory.Choose(parse, modelDir);
            if (residency == ReplaceMe.Core.Modeling.ModelResidency.Streamed && parse.GetValue(calibration.SelfGenerated) is not null)
                throw new ArgumentException($"The model is streamed ({reason}): --self-generated needs it in memory; give --calibration FILE.");
            var (decoder, config, tokenizer) = CliModels.LoadAdapter(modelDir, residency, reason, context.Out);
            using ((IDisposable)decoder)
            {
                // Checked against the model's config before any calibration text is read or generated.
                int L = decoder.BlockCount;
                int? n = parse.GetValue(blocks);
                if (n >= L) throw new ArgumentException($"--blocks {n} is too large: the model has {L} blocks, so n ≤ {L - 1}.");
                calibration.CheckAgainst(parse, config);
                var (batches, source) = await calibration.LoadAsync(parse, decoder, tokenizer, ct).ConfigureAwait(false);
                using var ownedBatches = batches;
                var m = parse.GetValue(metric) == "cosine" ? DistanceMetric.Cosine : DistanceMetric.Angular;
                var tokens = parse.GetValue(allTokens) ? DistanceTokens.AllTokens : DistanceTokens.LastToken;
                var profiler = decoder is ReplaceMe.Core.Modeling.StreamedDecoderModel
                    ? new DistanceProfiler { HiddenStateBudgetBytes = memory.Budget(parse) is long budget ? budget / 4 : 1L << 30, SpillDirectory = parse.GetValue(memory.SpillDir) }
                    : new DistanceProfiler();
                var progress = decoder is ReplaceMe.Core.Modeling.StreamedDecoderModel ? new BlockProgressPrinter(context.Out) : null;
                var profile = profiler.Measure(decoder, batches, n ?? L - 1, m, tokens, progress, ct);
                context.Out.WriteLine($"calibration: {source}; {profile.Sequences} sequences");
                context.Out.WriteLine($"{m} distance ({tokens}) between the outputs of blocks s−1 and s+n−1; cut [s, s+n) is 0-based, half-open");
                if (n is int len) PrintColumn(context.Out, profile, len);
                else PrintGrid(context.Out, profile);
                if (parse.GetValue(json) is string path)
                {
                    await CliFiles.WriteAllTextAtomicAsync(path, ToJson(profile, source).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", ct).ConfigureAwait(false);
                    context.Out.WriteLine($"wrote {Path.GetFullPath(path)}");
                }
            }
            return 0;
        }));
        return command;
    }

    private static void PrintColumn(TextWriter o, DistanceProfile p, int n)
    {
        var row = p.ForLength(n);
        int best = Enumerable.Range(1, p.BlockCount - n).MinBy(s => row[s - 1]);
        o.WriteLine("cut        distance");
        for (int s = 1; s + n <= p.BlockCount; s++)
        {
            string cut = $"[{s}, {s + n})", mark = s == best ? "  <- smallest" : "";
            o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{cut,-11}{row[s - 1]:F4}{mark}"));
        }
    }

    private static void PrintGrid(TextWriter o, DistanceProfile p)
    {
        o.WriteLine("start s \\ n " + string.Concat(Enumerable.Range(1, p.MaxLength).Select(n => n.ToString(CultureInfo.InvariantCulture).PadLeft(8))));
        for (int s = 1; s < p.BlockCount; s++)
        {
            var cells = Enumerable.Range(1, p.MaxLength).Select(n => double.IsNaN(p[s, n]) ? "       ." : p[s, n].ToString("F4", CultureInfo.InvariantCulture).PadLeft(8));
            o.WriteLine(s.ToString(CultureInfo.InvariantCulture).PadLeft(11) + " " + string.Concat(cells));
        }
    }

    private static JsonObject ToJson(DistanceProfile p, string source)
    {
        var byLength = new JsonObject();
        for (int n = 1; n <= p.MaxLength; n++)
            byLength[n.ToString(CultureInfo.InvariantCulture)] = new JsonArray(p.ForLength(n).Select(v => double.IsFinite(v) ? JsonValue.Create(v) : null).ToArray());
        return new JsonObject
        {
            ["block_count"] = p.BlockCount,
            ["metric"] = p.Metric.ToString(),
            ["tokens"] = p.Tokens.ToString(),
            ["sequences"] = p.Sequences,
            ["calibration"] = source,
            ["layout"] = "by_length[n][s-1] = distance of cut [s, s+n) (0-based, half-open); null where the cut does not fit",
            ["by_length"] = byLength,
        };
    }
}
