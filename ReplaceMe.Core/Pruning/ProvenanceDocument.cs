using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Estimation;

namespace ReplaceMe.Core.Pruning;

/// <summary>Builds <c>replaceme.json</c> (provenance) and the model card <c>README.md</c> of a saved pruned model.</summary>
internal static class ProvenanceDocument
{
    public const string FileName = "replaceme.json";
    public const string ModelCardName = "README.md";
    public const int FormatVersion = 1;

    public static JsonObject Build(PruningResult r)
    {
        var o = r.Options;
        var cuts = new JsonArray();
        foreach (var c in r.Outcomes)
        {
            cuts.Add(new JsonObject
            {
                ["start"] = c.Cut.Start,
                ["end"] = c.Cut.End,
                ["fold_block"] = c.Cut.FoldBlock,
                ["applied_start"] = c.Applied.Start,
                ["applied_end"] = c.Applied.End,
                ["transform"] = c.Transform is null ? "identity" : "folded into down_proj",
                ["transform_tensor"] = c.Transform is null ? null : SavedTransforms.TensorName(c.Cut),
                ["distance"] = Num(c.Cut.Length <= r.Profile.MaxLength ? r.Profile[c.Cut.Start, c.Cut.Length] : null),
                ["estimator_report"] = Report(c.Report),
            });
        }
        var distances = new JsonObject();
        for (int n = 1; n <= r.Profile.MaxLength; n++)
            distances[n.ToString(CultureInfo.InvariantCulture)] = new JsonArray(r.Profile.ForLength(n).Select(v => Num(v)).ToArray());
        var scores = new JsonObject();
        foreach (var (start, score) in r.Selection.Scores.OrderBy(kv => kv.Key))
            scores[start.ToString(CultureInfo.InvariantCulture)] = Num(score);

        var document = new JsonObject
        {
            ["format"] = "replaceme-provenance",
            ["format_version"] = FormatVersion,
            ["library"] = "ReplaceMe.Core",
            ["library_version"] = LibraryVersion,
            ["created_utc"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            ["index_convention"] = "0-based blocks; a cut is the half-open range [start, end) of removed blocks in the ORIGINAL model; its transform T (applied as X·T to the MLP output) is folded into block start-1 as down_proj.weight <- T^T·W",
            ["original_num_hidden_layers"] = r.OriginalBlockCount,
            ["num_hidden_layers"] = r.Model.BlockCount,
            ["removed"] = cuts,
            ["transforms_file"] = r.Outcomes.Any(c => c.Transform is not null) ? SavedTransforms.FileName : null,
            ["transforms_layout"] = "one float32 [d, d] tensor per fitted cut, named by removed[i].transform_tensor; written by PruningResult.Save beside the weights",
            ["selector"] = new JsonObject
            {
                ["name"] = r.SelectorName,
                ["settings"] = Settings(r.Options.Selector.Settings),
                ["description"] = r.Selection.Description,
                ["scores_by_start"] = scores,
            },
            ["estimator"] = new JsonObject
            {
                ["name"] = r.EstimatorName,
                ["settings"] = Settings(r.Options.Estimator.Settings),
            },
            ["distances"] = new JsonObject
            {
                ["metric"] = r.Profile.Metric.ToString(),
                ["tokens"] = r.Profile.Tokens.ToString(),
                ["sequences"] = r.Profile.Sequences,
                ["by_length_then_start"] = distances,
                ["layout"] = "by_length_then_start[n][s-1] = distance between the outputs of blocks s-1 and s+n-1 (null where the cut does not fit)",
            },
            ["calibration"] = new JsonObject
            {
                ["source"] = r.Calibration.Source,
                ["sha256_token_ids"] = r.Calibration.Fingerprint,
                ["sequences"] = r.Calibration.Sequences,
                ["tokens"] = r.Calibration.Tokens,
                ["held_out_sequences"] = r.Calibration.HeldOutSequences,
            },
            ["options"] = Options(o, r.BlocksPerCut),
            ["timings_seconds"] = new JsonObject(r.Timings.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value.TotalSeconds, 3)))),
            ["peak_working_set_bytes"] = r.PeakWorkingSetBytes,
        };
        // Healing (TransformHealer) changed the folded down_proj weights after pruning: every run, in order.
        if (r.Healing.Count > 0) document["healing"] = new JsonArray([.. r.Healing.Select(h => (JsonNode)h.ToJsonObject())]);
        return document;
    }

    public static string ModelCard(PruningResult r, string? baseModel)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine("---").AppendLine("tags:").AppendLine("- replaceme").AppendLine("- depth-pruning").AppendLine("---");
        sb.AppendLine().AppendLine(inv, $"# {(baseModel is null ? "Pruned model" : baseModel + " (pruned)")}").AppendLine();
        sb.AppendLine(inv, $"Depth-pruned with ReplaceMe.Core {LibraryVersion} (training-free; ReplaceMe, NeurIPS 2025): ");
        sb.AppendLine(inv, $"{r.OriginalBlockCount} → {r.Model.BlockCount} decoder blocks. Each removed run of blocks was replaced by a linear map ");
        sb.AppendLine("folded into the MLP down-projection of the block before it, so the architecture is unchanged and the folder loads ");
        sb.AppendLine("like the original model.").AppendLine();
        sb.AppendLine("| removed blocks (original, 0-based, [start, end)) | folded into block | estimator | tokens | relative residual |");
        sb.AppendLine("| --- | --- | --- | --- | --- |");
        foreach (var c in r.Outcomes)
            sb.AppendLine(inv, $"| {c.Cut} | {c.Cut.FoldBlock} | {c.Report.Estimator} | {c.Report.Tokens} | {c.Report.RelativeResidual?.ToString("G4", inv) ?? "n/a"} |");
        sb.AppendLine().AppendLine(inv, $"Selector: {r.SelectorName} — {r.Selection.Description}");
        sb.AppendLine().AppendLine(inv, $"Calibration: {r.Calibration.Source}; {r.Calibration.Sequences} sequences, {r.Calibration.Tokens} tokens; SHA-256 of token ids `{r.Calibration.Fingerprint}`.");
        sb.AppendLine().AppendLine(inv, $"Full provenance (distances, options, estimator figures): `{FileName}`. Quality was not re-evaluated by this step; measure it before use.");
        return sb.ToString();
    }

    public static string LibraryVersion =>
        typeof(ProvenanceDocument).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    private static JsonObject Report(EstimatorReport r) => new()
    {
        ["estimator"] = r.Estimator,
        ["tokens"] = r.Tokens,
        ["seconds"] = Math.Round(r.Elapsed.TotalSeconds, 3),
        ["relative_residual"] = Num(r.RelativeResidual),
        ["condition_estimate"] = Num(r.ConditionEstimate),
        ["damping"] = Num(r.Damping),
        ["used_pseudo_inverse"] = r.UsedPseudoInverse,
        ["cosine_before"] = Num(r.CosineBefore),
        ["cosine_after"] = Num(r.CosineAfter),
        ["loss_curve"] = r.LossCurve is null ? null : new JsonArray(r.LossCurve.Select(v => Num(v)).ToArray()),
        ["notes"] = r.Notes is null ? null : new JsonArray(r.Notes.Select(s => (JsonNode?)s).ToArray()),
    };

    /// <summary>A strategy's self-described settings as a JSON object.</summary>
    private static JsonObject Settings(IReadOnlyDictionary<string, object?> settings)
    {
        var o = new JsonObject();
        foreach (var (key, value) in settings.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            o[key] = value is null ? null : JsonSerializer.SerializeToNode(value, value.GetType());
        return o;
    }

    private static JsonObject Options(PruningOptions o, int n) => new()
    {
        ["blocks_per_cut"] = n,
        ["target_fraction"] = Num(o.TargetFraction),
        ["cut_count"] = o.CutCount,
        ["merge_adjacent"] = o.MergeAdjacent,
        ["seed"] = o.Seed,
        ["memory_budget_bytes"] = o.MemoryBudgetBytes,
        ["estimation_device"] = o.EstimationDevice?.ToString(),
        ["batch_size"] = o.BatchSize,
        ["max_length"] = o.MaxLength,
        ["held_out_fraction"] = o.HeldOutFraction,
        ["distance_metric"] = o.Selector.ProfileMetric.ToString(),
        ["distance_tokens"] = o.DistanceTokens.ToString(),
        ["max_distance_length"] = o.MaxDistanceLength,
    };

    private static JsonValue? Num(double? v) => v is { } x && double.IsFinite(x) ? JsonValue.Create(x) : null;
}
