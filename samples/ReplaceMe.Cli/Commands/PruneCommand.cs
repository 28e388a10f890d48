using System.CommandLine;
using System.Globalization;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Surgery;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme prune</c>: choose cut(s), fit the linear replacement, fold it in, and save the pruned model.</summary>
internal static class PruneCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var calibration = new CalibrationArgs();
        var heal = new HealArgs();
        var cosine = new CosineArgs();
        var blocks = new Option<int>("--blocks", "-n") { Description = "Blocks per cut (n); required unless --from-stats" };
        var fromStats = new Option<string[]>("--from-stats") { Description = "Instead of calibrating: merge these statistics files of one cut (from calibrate), fit T with lstsq and write --out with the streaming writer", AllowMultipleArgumentsPerToken = true };
        var estimator = new Option<string>("--estimator", "-e") { Description = "lstsq (closed form, recommended), diag (least-squares diagonal T), orthonormal (Procrustes rotation), cosine (the cosine loss; L-BFGS by default, Adam with --cosine-optimizer adam) or identity (plain removal)", DefaultValueFactory = _ => "lstsq" };
        estimator.AcceptOnlyFromAmong(Strategies.EstimatorNames);
        var selector = new Option<string>("--selector") { Description = "angular (paper), cosine (1 − cos), bi (block influence), fixed (with --start), replacement-aware", DefaultValueFactory = _ => "angular" };
        selector.AcceptOnlyFromAmong(Strategies.SelectorNames);
        var start = new Option<int?>("--start") { Description = "First removed block (0-based) for --selector fixed" };
        var cuts = new Option<int>("--cuts") { Description = "Number of disjoint cuts of n blocks (the paper's num_A)", DefaultValueFactory = _ => 1 };
        var merge = new Option<bool>("--merge") { Description = "Fuse chosen cuts that touch into one cut with one transform" };
        var ridge = new Option<double>("--ridge") { Description = "Ridge α for lstsq", DefaultValueFactory = _ => 0.0 };
        var underdetermined = new Option<bool>("--allow-underdetermined") { Description = "lstsq with fewer calibration tokens than the hidden size: fit with a small ridge (and a warning) instead of failing" };
        var output = new Option<string?>("--out", "-o") { Description = "Write the pruned Hugging Face folder here (with replaceme.json and README.md)" };
        var overwrite = CliOptions.Overwrite();
        var gguf = new Option<string?>("--gguf") { Description = "Also write the pruned model as one GGUF file (llama.cpp, LLamaSharp) with the provenance in its metadata" };
        var ggufDType = ExportGgufCommand.DTypeOption("--gguf-dtype");
        var json = new Option<string?>("--json") { Description = "Also write the provenance (replaceme.json content) to FILE" };
        var threads = CliOptions.Threads();
        CliOptions.Require(blocks, n => n > 0, "--blocks must be ≥ 1.");
        CliOptions.Require(cuts, k => k > 0, "--cuts must be ≥ 1.");
        CliOptions.Require(ridge, a => a >= 0 && double.IsFinite(a), "--ridge must be a finite number ≥ 0.");
        var command = new Command("prune", "Remove blocks with ReplaceMe: cuts are 0-based half-open [s, e); the linear map is folded into block s−1.")
        {
            model, blocks, estimator, selector, start, cuts, merge, ridge, underdetermined, output, overwrite, json, gguf, ggufDType, threads, fromStats,
        };
        calibration.AddTo(command, fromStats);
        var memory = new MemoryArgs();
        memory.AddTo(command);
        heal.AddTo(command);
        cosine.AddTo(command, estimator);
        command.Validators.Add(result =>
        {
            if (result.GetResult(fromStats) is not null)
            {
                foreach (var o in new Option[] { blocks, selector, start, cuts, merge, estimator, gguf, ggufDType, heal.Steps, heal.LearningRate, heal.HeldOut, memory.MaxMemory, memory.Streaming, memory.SpillDir })
                    if (result.GetResult(o) is { Implicit: false })
                        result.AddError($"{o.Name} is not used with --from-stats: the cut comes from the statistics files and T is fitted with lstsq.");
                return;
            }
            if (result.GetResult(blocks) is null) result.AddError("--blocks N is required (unless --from-stats).");
            bool isFixed = result.GetValue(selector) == "fixed", hasStart = result.GetResult(start) is not null;
            if (isFixed && !hasStart) result.AddError("--selector fixed needs --start S.");
            if (!isFixed && hasStart) result.AddError("--start is only used with --selector fixed.");
            if (isFixed && result.GetResult(cuts) is not null && result.GetValue(cuts) != 1) result.AddError("--selector fixed removes one cut [S, S + n); leave --cuts at 1.");
            string? chosen;
            try
            {
                chosen = result.GetValue(estimator);
            }
            catch (InvalidOperationException)
            {
                return; // not one of the estimators: the parser reports that
            }
            // An estimator left at its default reads as null here: the default is lstsq.
            bool lstsq = (chosen ?? "lstsq") == "lstsq";
            if (result.GetResult(ridge) is not null && !lstsq && chosen != "diag") result.AddError("--ridge is only used with --estimator lstsq or diag.");
            if (result.GetValue(underdetermined) && !lstsq) result.AddError("--allow-underdetermined is only used with --estimator lstsq.");
            if (result.GetResult(ggufDType) is { Implicit: false } && result.GetResult(gguf) is null) result.AddError("--gguf-dtype is only used with --gguf FILE.");
        });
        command.SetAction((parse, ct) => CliErrors.RunAsync(context, async () =>
        {
            var outDir = parse.GetValue(output);
            if (outDir is not null && File.Exists(outDir))
                throw new IOException($"--out '{outDir}' is an existing file; expected a folder for the pruned model.");
            if (outDir is not null && Directory.Exists(outDir) && !parse.GetValue(overwrite))
                throw new IOException($"Output folder '{outDir}' already exists; pass --overwrite to replace it.");
            using var threadScope = CliOptions.UseThreads(parse, threads); // calibration text generation included
            var ggufPath = parse.GetValue(gguf);
            if (ggufPath is not null && Directory.Exists(ggufPath))
                throw new IOException($"--gguf '{ggufPath}' is a folder; expected a .gguf file path.");
            if (ggufPath is not null && File.Exists(ggufPath) && !parse.GetValue(overwrite))
                throw new IOException($"GGUF file '{ggufPath}' already exists; pass --overwrite to replace it.");
            if (parse.GetResult(fromStats) is not null)
                return PruneFromStats.Run(context, parse.GetValue(model)!, parse.GetValue(fromStats) ?? [],
                    new LeastSquaresOptions(parse.GetValue(ridge), AllowUnderdetermined: parse.GetValue(underdetermined)),
                    outDir, parse.GetValue(overwrite), parse.GetValue(json), ct);
            var modelDir = parse.GetValue(model)!;
            var (residency, reason) = memory.Choose(parse, modelDir);
            if (residency == ModelResidency.Streamed)
            {
                // What a streamed model cannot do is refused before anything is loaded.
                if (parse.GetValue(calibration.SelfGenerated) is not null)
                    throw new ArgumentException($"The model is streamed ({reason}): --self-generated needs it in memory; give --calibration FILE.");
                if (heal.Enabled(parse))
                    throw new ArgumentException($"The model is streamed ({reason}): --heal-steps trains through the whole model in memory; prune without healing.");
                if (ggufPath is not null)
                    throw new ArgumentException($"The model is streamed ({reason}): --gguf writes from memory; save with --out and convert that folder with export-gguf where it fits.");
            }
            var (decoder, config, tokenizer) = CliModels.LoadAdapter(modelDir, residency, reason, context.Out);
            using ((IDisposable)decoder)
            {
                // Free space for the output, before calibration (the largest blocks assumed removed: never too strict).
                if (outDir is not null) PrunedCheckpointWriter.CheckDiskSpace(parse.GetValue(model)!, parse.GetValue(blocks) * parse.GetValue(cuts), outDir);
                var options = new PruningOptions
                {
                    BlocksPerCut = parse.GetValue(blocks),
                    CutCount = parse.GetValue(cuts),
                    MergeAdjacent = parse.GetValue(merge),
                    Selector = Strategies.Selector(parse.GetValue(selector)!, parse.GetValue(start), parse.GetValue(blocks)),
                    Estimator = Strategies.Estimator(parse.GetValue(estimator)!, parse.GetValue(ridge), parse.GetValue(underdetermined), cosine.Options(parse)),
                    Seed = parse.GetValue(calibration.Seed),
                    BatchSize = parse.GetValue(calibration.BatchSize),
                    MaxLength = parse.GetValue(calibration.MaxLength),
                };
                // Everything the model's config can decide is checked now, before calibration text is read or generated.
                _ = options.ResolveBlocksPerCut(decoder.BlockCount);
                calibration.CheckAgainst(parse, config);
                IProgress<ReplaceMe.Core.PruningProgress>? progress = null;
                if (decoder is StreamedDecoderModel streamed)
                {
                    options = memory.Apply(parse, options, streamed, context.Out);
                    progress = new BlockProgressPrinter(context.Out);
                }
                var (batches, source) = await calibration.LoadAsync(parse, decoder, tokenizer, ct).ConfigureAwait(false);
                using var ownedBatches = batches;
                options = options with { CalibrationSource = source };
                var (fit, heldOut) = heal.Split(parse, batches);
                using var result = new ReplaceMePruner().Prune(decoder, fit, options, progress, cancellationToken: ct);
                Print(context.Out, result);
                var healed = heal.Enabled(parse)
                    ? heal.Run(parse, context.Out, result, parse.GetValue(model)!, fit, heldOut, options.Seed, ct)
                    : null;
                if (parse.GetValue(json) is string path)
                {
                    await CliFiles.WriteAllTextAtomicAsync(path, result.ProvenanceJson() + "\n", ct).ConfigureAwait(false);
                    context.Out.WriteLine($"wrote {Path.GetFullPath(path)}");
                }
                if (outDir is not null)
                {
                    var extra = new Dictionary<string, string>();
                    if (healed is not null) extra["healing.json"] = healed.ToJson() + "\n";
                    result.Save(outDir, new SaveOptions { Overwrite = parse.GetValue(overwrite), ExtraFiles = extra }, ct);
                    context.Out.WriteLine($"saved {Path.GetFullPath(outDir)} ({result.Model.BlockCount} blocks)");
                }
                if (ggufPath is not null)
                {
                    var dtypeName = parse.GetValue(ggufDType)!;
                    result.SaveGguf(ggufPath, new GgufExportOptions { DType = ExportGgufCommand.ParseDType(dtypeName), Overwrite = parse.GetValue(overwrite) }, cancellationToken: ct);
                    context.Out.WriteLine(ExportGgufCommand.Describe(ggufPath, result.Model.BlockCount, dtypeName));
                }
            }
            return 0;
        }));
        return command;
    }

    private static void Print(TextWriter o, PruningResult r)
    {
        static string F(double? v) => v?.ToString("G4", CultureInfo.InvariantCulture) ?? "n/a";
        o.WriteLine($"calibration: {r.Calibration.Source}; {r.Calibration.Sequences} sequences, {r.Calibration.Tokens} tokens, sha256 {r.Calibration.Fingerprint[..16]}…");
        o.WriteLine($"selector {r.SelectorName}: {r.Selection.Description}");
        foreach (var c in r.Outcomes)
        {
            var dist = c.Cut.Length <= r.Profile.MaxLength ? F(r.Profile[c.Cut.Start, c.Cut.Length]) : "n/a";
            o.WriteLine($"removed {c.Cut} (original indices; applied as {c.Applied}), folded into block {c.Cut.FoldBlock}; distance {dist}");
            o.WriteLine($"  {c.Report.Estimator}: {c.Report.Tokens} tokens, {c.Report.Elapsed.TotalSeconds:F1} s, relative residual {F(c.Report.RelativeResidual)}, " +
                        $"cosine {F(c.Report.CosineBefore)} -> {F(c.Report.CosineAfter)}");
        }
        o.WriteLine($"blocks {r.OriginalBlockCount} -> {r.Model.BlockCount}; total {r.Timings["total"].TotalSeconds:F1} s, peak working set {r.PeakWorkingSetBytes >> 20} MiB, {r.ForwardEquivalents.ToString("F2", CultureInfo.InvariantCulture)} forward-equivalents over the calibration data");
    }
}
