using System.Text.Json;
using Microsoft.Extensions.Logging;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Pruning;

/// <summary>
/// The outcome of <see cref="ReplaceMePruner.Prune(ITransformerAdapter, IReadOnlyList{TokenBatch}, PruningOptions, IProgress{PruningProgress}, ILogger, CancellationToken)"/>:
/// the pruned model (the same object that was passed in), the cuts in original indices, the distance profile, the
/// selector's scores, the estimators' figures, timings and peak memory. Owns the transforms; dispose it when done
/// (the model is not disposed).
/// </summary>
public sealed class PruningResult : IDisposable
{
    private readonly ILogger? _logger;

    internal PruningResult(
        ITransformerAdapter model, int originalBlockCount, int blocksPerCut, IReadOnlyList<CutOutcome> outcomes,
        DistanceProfile profile, LayerSelection selection, string selectorName, string estimatorName,
        PruningOptions options, IReadOnlyDictionary<string, TimeSpan> timings, long peakWorkingSetBytes,
        CalibrationSummary calibration, ILogger? logger)
    {
        Model = model;
        OriginalBlockCount = originalBlockCount;
        BlocksPerCut = blocksPerCut;
        Outcomes = outcomes;
        Profile = profile;
        Selection = selection;
        SelectorName = selectorName;
        EstimatorName = estimatorName;
        Options = options;
        Timings = timings;
        PeakWorkingSetBytes = peakWorkingSetBytes;
        Calibration = calibration;
        _logger = logger;
    }

    /// <summary>The pruned model (modified in place).</summary>
    public ITransformerAdapter Model { get; }

    /// <summary>Blocks before pruning.</summary>
    public int OriginalBlockCount { get; }

    /// <summary>n, the blocks per cut the selector was asked for (merged cuts may be longer).</summary>
    public int BlocksPerCut { get; }

    /// <summary>The removed cuts in the original model's indices, ascending.</summary>
    public IReadOnlyList<BlockCut> Cuts => Outcomes.Select(o => o.Cut).ToList();

    /// <summary>Per cut: original and applied indices, estimator report, transform.</summary>
    public IReadOnlyList<CutOutcome> Outcomes { get; }

    /// <summary>Distances for every start and n = 1..<see cref="DistanceProfile.MaxLength"/> (the paper's heatmap).</summary>
    public DistanceProfile Profile { get; }

    /// <summary>The selector's decision and its per-start scores.</summary>
    public LayerSelection Selection { get; }

    /// <summary>Selector name ("angular", "cosine", "bi", "fixed", "replacement-aware", or a custom one).</summary>
    public string SelectorName { get; }

    /// <summary>Estimator name ("lstsq", "cosine", "identity", or a custom one).</summary>
    public string EstimatorName { get; }

    /// <summary>The options the run used.</summary>
    public PruningOptions Options { get; }

    /// <summary>Wall time per stage: "profile", "select", "estimate", "surgery", "total".</summary>
    public IReadOnlyDictionary<string, TimeSpan> Timings { get; }

    /// <summary>Peak working set of the process at the end of the run (<see cref="System.Diagnostics.Process.PeakWorkingSet64"/>).</summary>
    public long PeakWorkingSetBytes { get; }

    /// <summary>What the calibration data was (source, fingerprint, counts).</summary>
    public CalibrationSummary Calibration { get; }

    /// <summary>The provenance document that <see cref="Save(string, bool, CancellationToken)"/> writes as <c>replaceme.json</c>.</summary>
    public string ProvenanceJson() => ProvenanceDocument.Build(this).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>
    /// Writes the pruned model as a Hugging Face folder (<see cref="DecoderModel.SavePretrained"/>: config with the new
    /// <c>num_hidden_layers</c>, contiguous tensor names, tokenizer files copied from the source folder) plus
    /// <c>replaceme.json</c> (provenance: removed ranges in original indices, distances, selector, estimator figures,
    /// calibration source and fingerprint, library version, options), a short model card <c>README.md</c> and, when a
    /// cut was replaced by a fitted transform, <see cref="SavedTransforms.FileName"/> (each cut's T in float32). Everything
    /// is built in one temporary sibling folder and moved into place at the end; a failed or cancelled save leaves nothing.
    /// </summary>
    /// <param name="directory">Target folder.</param>
    /// <param name="overwrite">Replace an existing folder; otherwise an existing folder is an error.</param>
    /// <param name="cancellationToken">Checked before each file is written and before the folder is moved into place.</param>
    /// <exception cref="UnsupportedModelException">The pruned model is not a <see cref="DecoderModel"/>.</exception>
    /// <exception cref="IOException">The folder exists and <paramref name="overwrite"/> is false, or writing failed.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; no output folder was left behind.</exception>
    public void Save(string directory, bool overwrite = false, CancellationToken cancellationToken = default) =>
        Save(directory, new SaveOptions { Overwrite = overwrite }, cancellationToken);

    /// <summary>Writes the pruned model like <see cref="Save(string, bool, CancellationToken)"/>, with every save option.</summary>
    /// <param name="directory">Target folder.</param>
    /// <param name="options">Storage dtype, shard size, overwrite; its extra files are written too (the provenance
    /// files <c>replaceme.json</c> and <c>README.md</c> win over same-named extra files).</param>
    /// <param name="cancellationToken">Checked before each file is written and before the folder is moved into place.</param>
    /// <exception cref="UnsupportedModelException">The pruned model is not a <see cref="DecoderModel"/>.</exception>
    /// <exception cref="IOException">The folder exists and overwriting was not requested, or writing failed.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; no output folder was left behind.</exception>
    public void Save(string directory, SaveOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(options);
        if (Model is not DecoderModel decoder)
            throw new UnsupportedModelException($"Saving needs the built-in DecoderModel; this model is a {Model.GetType().Name}. Save your own model yourself and write ProvenanceJson() beside it.");
        cancellationToken.ThrowIfCancellationRequested();
        var baseName = decoder.SourceDirectory is { } src ? Path.GetFileName(src) : null;
        var files = new Dictionary<string, string>(options.ExtraFiles, StringComparer.Ordinal)
        {
            [ProvenanceDocument.FileName] = ProvenanceJson() + "\n",
            [ProvenanceDocument.ModelCardName] = ProvenanceDocument.ModelCard(this, baseName),
        };
        // Each cut's T in float32 beside the weights (SavedTransforms), written inside the same atomic folder write.
        var transforms = SavedTransforms.ToTensors(Outcomes);
        try
        {
            var tensorFiles = new Dictionary<string, IReadOnlyList<KeyValuePair<string, TorchSharp.torch.Tensor>>>(options.ExtraTensorFiles, StringComparer.Ordinal);
            if (transforms.Count > 0) tensorFiles[SavedTransforms.FileName] = transforms;
            decoder.SavePretrained(directory, options with { ExtraFiles = files, ExtraTensorFiles = tensorFiles }, _logger, cancellationToken);
        }
        finally
        {
            foreach (var (_, t) in transforms) t.Dispose();
        }
        var target = Path.GetFullPath(directory);
        if (_logger is not null) PruningLog.Saved(_logger, target);
    }

    /// <summary>Disposes the transforms.</summary>
    public void Dispose()
    {
        foreach (var o in Outcomes) o.Transform?.Dispose();
    }
}
