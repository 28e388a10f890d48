using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Surgery;

namespace ReplaceMe.Cli.Commands;

/// <summary>
/// <c>prune --from-stats FILES</c>: merges the statistics files of one cut (written by <c>calibrate</c> on each
/// calibration shard), solves T, and writes the pruned checkpoint straight from the model folder with the streaming
/// writer (the model is never loaded).
/// </summary>
internal static class PruneFromStats
{
    public static int Run(CliContext context, string modelDir, IReadOnlyList<string> statsFiles, LeastSquaresOptions options,
        string? outDir, bool overwrite, string? jsonPath, CancellationToken ct)
    {
        if (statsFiles.Count == 0) throw new ArgumentException("--from-stats needs at least one statistics file.");
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder not found: {modelDir}");
        var identity = ModelIdentity.Of(modelDir);
        var config = ModelConfigJson.Load(Path.Combine(modelDir, "config.json"));
        var parts = new List<CutStatistics>();
        var files = new JsonArray();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            foreach (var f in statsFiles)
            {
                var s = CutStatistics.Load(f);
                parts.Add(s);
                s.RequireModel(identity, modelDir);
                files.Add(new JsonObject
                {
                    ["name"] = Path.GetFileName(f),
                    ["sha256"] = Sha256(f, ct),
                    ["tokens"] = s.Tokens,
                    ["sequences"] = s.Sequences,
                    ["activation_dtype"] = s.ActivationDType,
                });
            }
            var loadSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            using var merged = CutStatistics.Merge(parts);
            var estimate = merged.Solve(options, ct);
            var solveSeconds = clock.Elapsed.TotalSeconds;
            using var transform = estimate.Transform;
            var inv = CultureInfo.InvariantCulture;
            var r = estimate.Report;
            context.Out.WriteLine($"merged {parts.Count} statistics file(s): cut {merged.Cut}, {merged.Sequences} sequences, {merged.Tokens} tokens");
            context.Out.WriteLine(string.Create(inv, $"angular distance {merged.MeanLastTokenDistance:G4} (last token); lstsq relative residual {r.RelativeResidual:G4}, damping {r.Damping:G3}"));
            var provenance = new JsonObject
            {
                ["format"] = "replaceme-provenance-from-statistics",
                ["format_version"] = 2,
                ["library"] = "ReplaceMe.Core",
                ["library_version"] = typeof(CutStatistics).Assembly.GetName().Version?.ToString(3),
                ["created_utc"] = DateTime.UtcNow.ToString("o", inv),
                ["index_convention"] = "0-based blocks; the cut is the half-open range [start, end) of removed blocks in the ORIGINAL model; T (applied as X·T to the MLP output) is folded into block start-1 as down_proj.weight <- T^T·W",
                ["model"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir))),
                ["model_identity"] = identity,
                ["original_num_hidden_layers"] = config.NumHiddenLayers,
                ["num_hidden_layers"] = config.NumHiddenLayers - merged.Cut.Length,
                ["removed"] = new JsonArray(new JsonObject
                {
                    ["start"] = merged.Cut.Start,
                    ["end"] = merged.Cut.End,
                    ["fold_block"] = merged.Cut.FoldBlock,
                    ["transform"] = "folded into down_proj",
                    ["distance_last_token"] = merged.MeanLastTokenDistance,
                    ["distance_all_tokens"] = merged.MeanDistance,
                    ["tokens"] = merged.Tokens,
                    ["sequences"] = merged.Sequences,
                    ["relative_residual"] = r.RelativeResidual,
                    ["damping"] = r.Damping,
                    ["used_pseudo_inverse"] = r.UsedPseudoInverse,
                }),
                ["estimator"] = new JsonObject
                {
                    ["name"] = "lstsq",
                    ["settings"] = new JsonObject { ["ridge"] = options.Ridge, ["allow_underdetermined"] = options.AllowUnderdetermined },
                },
                ["calibration"] = new JsonObject
                {
                    ["source"] = $"{parts.Count} statistics file(s) from 'replaceme calibrate', merged",
                    ["tokens"] = merged.Tokens,
                    ["sequences"] = merged.Sequences,
                    ["activation_dtype"] = merged.ActivationDType,
                },
                ["statistics_files"] = files,
                ["timings_seconds"] = new JsonObject { ["load_statistics"] = Math.Round(loadSeconds, 3), ["merge_and_solve"] = Math.Round(solveSeconds, 3) },
            };
            var text = provenance.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
            if (jsonPath is not null)
            {
                CliFiles.WriteAllTextAtomicAsync(jsonPath, text, ct).GetAwaiter().GetResult();
                context.Out.WriteLine($"wrote {Path.GetFullPath(jsonPath)}");
            }
            if (outDir is not null)
            {
                var report = PrunedCheckpointWriter.Write(modelDir, [new CutTransform(merged.Cut, transform)], outDir,
                    new PrunedCheckpointOptions { Overwrite = overwrite, ExtraFiles = new Dictionary<string, string> { ["replaceme.json"] = text } },
                    cancellationToken: ct);
                context.Out.WriteLine($"saved {report.Directory} ({report.BlockCount} blocks; {report.TensorsCopied} tensors copied, {report.TensorsFolded} folded; {report.BytesRead >> 20} MiB read, {report.BytesWritten >> 20} MiB written)");
            }
            return 0;
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>SHA-256 of a file's bytes, as 64 lowercase hex digits.</summary>
    private static string Sha256(string path, CancellationToken ct)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashDataAsync(stream, ct).AsTask().GetAwaiter().GetResult());
    }
}
