using System.Text.Json;
using Microsoft.Extensions.Logging;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Surgery;
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
        CalibrationSummary calibration, double forwardEquivalents, ILogger? logger)
    {
        ForwardEquivalents = forwardEquivalents;
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

    /// <summary>
    /// Model blocks the run executed, in forward passes over the calibration data: Σ (blocks run × positions) /
    /// (original blocks × positions of every calibration batch, held-out ones included). 1.0 is one full forward pass
    /// (without the head); the angular selector with least squares and one cut needs 1.0, the same run with the fit in
    /// a second pass 1 + (end of the cut) / blocks.
    /// </summary>
    public double ForwardEquivalents { get; }

    /// <summary>What the calibration data was (source, fingerprint, counts).</summary>
    public CalibrationSummary Calibration { get; }

    /// <summary>
    /// The healing runs on this result's model, in order (<see cref="TransformHealer"/>'s overloads that take a
    /// <see cref="PruningResult"/>); empty when none ran. Written to <c>replaceme.json</c> as <c>healing</c>.
    /// </summary>
    public IReadOnlyList<HealingResult> Healing => _healing;

    private readonly List<HealingResult> _healing = [];

    internal void AddHealing(HealingResult result) => _healing.Add(result);

    /// <summary>The provenance document that <see cref="Save(string, bool, CancellationToken)"/> writes as <c>replaceme.json</c>.</summary>
    public string ProvenanceJson() => ProvenanceDocument.Build(this).ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>
    /// Writes the pruned model as a Hugging Face folder (<see cref="DecoderModel.SavePretrained"/>: config with the new
    /// <c>num_hidden_layers</c>, contiguous tensor names, tokenizer files copied from the source folder) plus
    /// <c>replaceme.json</c> (provenance: removed ranges in original indices, distances, selector, estimator figures,
    /// calibration source and fingerprint, library version, options), a short model card <c>README.md</c> and, when a
    /// cut was replaced by a fitted transform, <see cref="SavedTransforms.FileName"/> (each cut's T in float32). Everything
    /// is built in one temporary sibling folder and moved into place at the end; a failed or cancelled save leaves nothing.
    /// When the model was loaded from a folder that still exists and the cuts are the only change (checked tensor by
    /// tensor), the folder is written by <see cref="PrunedCheckpointWriter"/> from the source files: untouched tensors
    /// are then byte-for-byte copies of the source's; otherwise the model is written from memory (docs/checkpoints.md). A
    /// <see cref="StreamedDecoderModel"/> is always written from its source folder with this result's cuts (docs/streaming.md).
    /// </summary>
    /// <param name="directory">Target folder.</param>
    /// <param name="overwrite">Replace an existing folder; otherwise an existing folder is an error.</param>
    /// <param name="cancellationToken">Checked before each file is written and before the folder is moved into place.</param>
    /// <exception cref="UnsupportedModelException">The pruned model is neither a <see cref="DecoderModel"/> nor a
    /// <see cref="StreamedDecoderModel"/>, or a streamed model went through more than this result's prune.</exception>
    /// <exception cref="IOException">The folder exists and <paramref name="overwrite"/> is false, or writing failed.</exception>
    /// <exception cref="InsufficientDiskSpaceException">The target's file system has less free space than the output needs plus a margin; checked before anything is written.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; no output folder was left behind.</exception>
    public void Save(string directory, bool overwrite = false, CancellationToken cancellationToken = default) =>
        Save(directory, new SaveOptions { Overwrite = overwrite }, cancellationToken);

    /// <summary>Writes the pruned model like <see cref="Save(string, bool, CancellationToken)"/>, with every save option.</summary>
    /// <param name="directory">Target folder.</param>
    /// <param name="options">Storage dtype, shard size, overwrite; its extra files are written too (the provenance
    /// files <c>replaceme.json</c> and <c>README.md</c> win over same-named extra files).</param>
    /// <param name="cancellationToken">Checked before each file is written and before the folder is moved into place.</param>
    /// <exception cref="UnsupportedModelException">The pruned model is neither a <see cref="DecoderModel"/> nor a
    /// <see cref="StreamedDecoderModel"/>, or a streamed model went through more than this result's prune.</exception>
    /// <exception cref="IOException">The folder exists and overwriting was not requested, or writing failed.</exception>
    /// <exception cref="InsufficientDiskSpaceException">The target's file system has less free space than the output needs plus a margin; checked before anything is written.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; no output folder was left behind.</exception>
    public void Save(string directory, SaveOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(options);
        var streamed = Model as StreamedDecoderModel;
        var decoder = Model as DecoderModel;
        if (decoder is null && streamed is null)
            throw new UnsupportedModelException($"Saving needs the built-in DecoderModel or StreamedDecoderModel; this model is a {Model.GetType().Name}. Save your own model yourself and write ProvenanceJson() beside it.");
        cancellationToken.ThrowIfCancellationRequested();
        var baseName = (streamed?.SourceDirectory ?? decoder!.SourceDirectory) is { } src ? Path.GetFileName(src) : null;
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
            var complete = options with { ExtraFiles = files, ExtraTensorFiles = tensorFiles };
            if (streamed is not null)
                SaveStreamed(streamed, directory, complete, cancellationToken);
            else if (!TryStreamFromSource(decoder!, directory, complete, cancellationToken))
                decoder!.SavePretrained(directory, complete, _logger, cancellationToken);
        }
        finally
        {
            foreach (var (_, t) in transforms) t.Dispose();
        }
        var target = Path.GetFullPath(directory);
        if (_logger is not null) PruningLog.Saved(_logger, target);
    }

    /// <summary>
    /// Writes the pruned model as one GGUF file for llama.cpp and its clients (<see cref="DecoderModel.SaveGguf"/>), with
    /// the pruning's provenance as metadata: <c>general.description</c>, <c>replaceme.removed_blocks</c> (cuts in the
    /// original model's indices), <c>replaceme.original_block_count</c>, <c>replaceme.selector</c>,
    /// <c>replaceme.estimator</c>, <c>replaceme.library_version</c> and <c>replaceme.provenance</c> (the whole
    /// <see cref="ProvenanceJson"/> document).
    /// </summary>
    /// <param name="path">Target <c>.gguf</c> file.</param>
    /// <param name="options">Storage dtype, overwrite, alignment, name, tokenizer folder; its extra keys are written too.</param>
    /// <param name="progress">Receives stage <c>"gguf"</c> after each tensor.</param>
    /// <param name="cancellationToken">Checked before each tensor; cancelling leaves no file.</param>
    /// <exception cref="UnsupportedModelException">The pruned model is not a <see cref="DecoderModel"/>, or its GGUF architecture cannot express it.</exception>
    /// <exception cref="IOException">The file exists and overwriting was not requested, or writing failed.</exception>
    /// <exception cref="InsufficientDiskSpaceException">The target's file system has less free space than the output needs plus a margin; checked before anything is written.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; no file was written.</exception>
    public void SaveGguf(string path, GgufExportOptions? options = null, IProgress<PruningProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new GgufExportOptions();
        if (Model is not DecoderModel decoder)
            throw new UnsupportedModelException($"GGUF export needs the built-in DecoderModel; this model is a {Model.GetType().Name}.");
        var removed = string.Join(", ", Cuts.Select(c => c.ToString()));
        var keys = new Dictionary<string, string>(options.ExtraMetadata, StringComparer.Ordinal)
        {
            ["general.description"] = $"Depth-pruned with ReplaceMe.Core {ProvenanceDocument.LibraryVersion}: blocks {removed} of {OriginalBlockCount} removed " +
                $"(selector {SelectorName}, estimator {EstimatorName}; linear transforms folded into the preceding MLP down-projections).",
            ["replaceme.removed_blocks"] = removed,
            ["replaceme.original_block_count"] = OriginalBlockCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["replaceme.selector"] = SelectorName,
            ["replaceme.estimator"] = EstimatorName,
            ["replaceme.library_version"] = ProvenanceDocument.LibraryVersion,
            ["replaceme.provenance"] = ProvenanceJson(),
        };
        decoder.SaveGguf(path, options with { ExtraMetadata = keys }, progress, _logger, cancellationToken);
    }

    /// <summary>
    /// The one way to write a pruned checkpoint: when the model was loaded from a folder that still exists
    /// (<see cref="DecoderModel.SourceDirectory"/>) and the cuts are the only change, <see cref="PrunedCheckpointWriter"/>
    /// writes it from that folder (untouched tensors copied byte for byte, the folded down-projections recomputed in
    /// float64). Whether the cuts are the only change is checked, not assumed: the pruned config must equal the model's
    /// and every tensor the writer produces must equal the model's (in the model's dtype). Otherwise — no source, weights
    /// or config changed after loading, a custom surgeon, a lossy compute dtype — the model is written from memory.
    /// Returns false when the in-memory path must be taken.
    /// </summary>
    private bool TryStreamFromSource(DecoderModel decoder, string directory, SaveOptions options, CancellationToken cancellationToken)
    {
        if (decoder.SourceDirectory is not { } source || !Directory.Exists(source)) return false;
        var storage = options.DType ?? Runtime.Precision.FromTorchDtypeName(decoder.Config.TorchDtype);
        if (storage is null) return false; // SavePretrained reports the unsupported dtype
        var cuts = Outcomes.Select(o => new CutTransform(o.Cut, o.Transform)).ToList();
        var streamOptions = new PrunedCheckpointOptions
        {
            DType = storage, MaxShardBytes = options.MaxShardBytes, Overwrite = options.Overwrite, ExtraFiles = options.ExtraFiles,
            ExtraTensorFiles = options.ExtraTensorFiles,
        };
        try
        {
            PrunedCheckpointWriter.Write(source, cuts, directory, streamOptions, progress: null, _logger,
                decoder.Config, decoder.state_dict(), cancellationToken);
            return true;
        }
        catch (SourceMismatchException ex)
        {
            if (_logger is not null) StreamingSaveLog.WritingFromMemory(_logger, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// A streamed model is written from its source folder by <see cref="PrunedCheckpointWriter"/> with this result's cuts
    /// (untouched tensors byte for byte, the folded down-projections recomputed in float64 from the stored weights; a
    /// null <see cref="SaveOptions.DType"/> keeps every stored dtype). The model must hold exactly the source minus these cuts.
    /// </summary>
    private void SaveStreamed(StreamedDecoderModel streamed, string directory, SaveOptions options, CancellationToken cancellationToken)
    {
        var removed = Enumerable.Range(0, streamed.SourceConfig.NumHiddenLayers).Except(streamed.SourceBlocks).ToHashSet();
        var cutBlocks = Outcomes.SelectMany(o => Enumerable.Range(o.Cut.Start, o.Cut.Length)).ToHashSet();
        if (OriginalBlockCount != streamed.SourceConfig.NumHiddenLayers || !removed.SetEquals(cutBlocks))
            throw new UnsupportedModelException(
                $"The streamed model from '{streamed.SourceDirectory}' has source blocks {{{string.Join(", ", removed.Order())}}} removed, but this result's cuts " +
                $"({string.Join(" ", Cuts)} of {OriginalBlockCount} blocks) do not account for exactly those: a streamed model can be saved only by the result of the one prune it went through.");
        streamed.ReleaseResident(); // the writer reads from the source files; the block would only take memory
        var cuts = Outcomes.Select(o => new CutTransform(o.Cut, o.Transform)).ToList();
        var streamOptions = new PrunedCheckpointOptions
        {
            DType = options.DType, MaxShardBytes = options.MaxShardBytes, Overwrite = options.Overwrite, ExtraFiles = options.ExtraFiles,
            ExtraTensorFiles = options.ExtraTensorFiles,
        };
        try
        {
            PrunedCheckpointWriter.Write(streamed.SourceDirectory, cuts, directory, streamOptions, progress: null, _logger,
                streamed.Config with { TorchDtype = streamed.SourceConfig.TorchDtype }, expected: null, cancellationToken);
        }
        catch (SourceMismatchException ex)
        {
            throw new UnsupportedModelException($"The streamed model cannot be written from '{streamed.SourceDirectory}': {ex.Message}", ex);
        }
    }

    /// <summary>Disposes the transforms.</summary>
    public void Dispose()
    {
        foreach (var o in Outcomes) o.Transform?.Dispose();
    }
}
