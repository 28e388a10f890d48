using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Surgery;

/// <summary>
/// Writes a pruned Hugging Face checkpoint straight from the source folder, without loading the model: every tensor of
/// a kept block and every non-block tensor is copied byte for byte from the source shards (a bfloat16 tensor stays
/// bit-identical), block indices are renumbered, and only the down-projection of the block before each cut is new —
/// <c>W ← Tᵀ·W</c> (and <c>b ← Tᵀ·b</c>) computed in float64 from the stored weight and cast back to its dtype.
/// Peak memory is O(largest tensor): copies go through a fixed buffer with positioned reads (so copied pages never count
/// in the process's resident set), and only a folded weight is ever materialised (in float64).
/// </summary>
/// <remarks>
/// The folder is built like <see cref="DecoderModel.SavePretrained"/> builds it — <c>config.json</c> with every field
/// kept (<c>num_hidden_layers</c> and per-layer arrays such as <c>layer_types</c> shortened), safetensors sharded by
/// <see cref="PrunedCheckpointOptions.MaxShardBytes"/> with an index when there is more than one shard, the source's
/// companion files (tokenizer, generation config, chat template, license) copied, extra files — in a temporary sibling
/// moved into place at the end (<see cref="OutputFolder"/>): a failure or cancellation leaves no output. A source
/// shard whose size or modification time changes during the run is detected and the run fails.
/// Cuts are in the source's indices. Adjacent cuts are allowed: a cut whose block before it is itself removed folds
/// into the nearest kept block before it, after the transforms of the earlier cuts (as applying the cuts one after the
/// other to a loaded model does).
/// </remarks>
public static partial class PrunedCheckpointWriter
{
    private const int CopyBufferBytes = 8 << 20;

    /// <summary>Writes the source checkpoint with <paramref name="cuts"/> removed into <paramref name="outDir"/>.</summary>
    /// <param name="sourceDir">Hugging Face folder: <c>config.json</c> plus <c>model.safetensors</c> or a sharded index.</param>
    /// <param name="cuts">Removed cuts in the source's block indices, each with its transform (null = identity).</param>
    /// <param name="outDir">Folder to create.</param>
    /// <param name="options">Shard size, overwrite, storage dtype, extra files; defaults when null.</param>
    /// <param name="progress">Receives one "write" report per tensor (fraction of bytes done).</param>
    /// <param name="logger">Receives a start and a done line, and one line per source file that is not copied.</param>
    /// <param name="cancellationToken">Checked between tensors and every 8 MiB copied; cancelling leaves no output.</param>
    /// <returns>What was written.</returns>
    /// <exception cref="DirectoryNotFoundException">The source folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The source's config or tensors are missing, malformed or do not
    /// match each other, or a source shard changed while being read (<see cref="SourceFileChangedException"/>).</exception>
    /// <exception cref="PruningException">A cut is invalid for the source, cuts overlap or remove every block, or a
    /// transform has the wrong shape or non-finite values.</exception>
    /// <exception cref="ArgumentException">An option is out of range or an extra file name is not a plain file name.</exception>
    /// <exception cref="IOException">The target exists and overwriting was not requested, collides with the source, or writing failed.</exception>
    /// <exception cref="InsufficientDiskSpaceException">The target's file system has less free space than the output's
    /// size plus a margin; checked before anything is written.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; nothing was left behind.</exception>
    public static PrunedCheckpointReport Write(
        string sourceDir, IReadOnlyList<CutTransform> cuts, string outDir, PrunedCheckpointOptions? options = null,
        IProgress<PruningProgress>? progress = null, ILogger? logger = null, CancellationToken cancellationToken = default) =>
        Write(sourceDir, cuts, outDir, options, progress, logger, expectedConfig: null, expected: null, cancellationToken);

    /// <summary>
    /// As the public overload; when <paramref name="expected"/> is given (an in-memory model said to be the source with
    /// these cuts applied), the pruned config must equal <paramref name="expectedConfig"/> and every tensor is first
    /// compared with the in-memory tensor of the same output name (converted to its dtype and device); the first
    /// difference throws <see cref="SourceMismatchException"/> before anything is committed.
    /// </summary>
    internal static PrunedCheckpointReport Write(
        string sourceDir, IReadOnlyList<CutTransform> cuts, string outDir, PrunedCheckpointOptions? options,
        IProgress<PruningProgress>? progress, ILogger? logger, ModelConfig? expectedConfig, IReadOnlyDictionary<string, Tensor>? expected,
        CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceDir);
        ArgumentNullException.ThrowIfNull(cuts);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        options ??= new PrunedCheckpointOptions();
        logger ??= NullLogger.Instance;
        TorchRuntime.EnsureLoaded(logger);
        var clock = Stopwatch.StartNew();
        if (options.MaxShardBytes is <= 0)
            throw new ArgumentException($"PrunedCheckpointOptions.MaxShardBytes must be positive, got {options.MaxShardBytes}.", nameof(options));
        if (options.DType is ScalarType dt && !Precision.IsSupportedCompute(dt))
            throw new ArgumentException($"PrunedCheckpointOptions.DType must be Float32, Float16, BFloat16 or Float64, not {dt}.", nameof(options));
        foreach (var name in options.ExtraFiles.Keys) HfCheckpointFolder.CheckExtraFileName(name);
        foreach (var name in options.ExtraTensorFiles.Keys) HfCheckpointFolder.CheckExtraTensorFileName(name);
        var source = Path.GetFullPath(sourceDir);
        if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"Source checkpoint folder '{source}' does not exist.");

        var config = ModelConfigJson.Load(Path.Combine(source, HfCheckpointFolder.ConfigFileName));
        DecoderModel.Validate(config);
        var plan = CutPlan.Create(config, cuts);
        using var reader = SafetensorsReader.Open(source);
        DecoderModel.CheckTensors(DecoderModel.ExpectedShapes(config), config, reader.Names, n => reader.GetInfo(n).Shape, $"checkpoint '{reader.Source}'");

        var pruned = plan.PrunedConfig;
        if (options.DType is ScalarType storage) pruned = pruned with { TorchDtype = Precision.TorchDtypeName(storage) };
        var configNode = ModelConfigJson.ToJson(pruned);
        if (expectedConfig is not null
            && !System.Text.Json.Nodes.JsonNode.DeepEquals(configNode, ModelConfigJson.ToJson(expectedConfig with { TorchDtype = pruned.TorchDtype })))
            throw new SourceMismatchException("its config is not the source's config with the cuts removed");
        var configJson = configNode.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        long maxShard = options.MaxShardBytes ?? LikeSource(reader);

        using var copier = new Copier(reader, cancellationToken);
        var tensors = new List<RawTensor>();
        int copied = 0, folded = 0, cast = 0;
        long totalBytes = 0;
        var writtenNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in reader.Names)
        {
            if (DecoderModel.IsIgnorableCheckpointKey(config, name)) continue; // as loading does: never part of the model
            string? outName = plan.Rename(name);
            if (outName is null) continue; // a removed block
            var info = reader.GetInfo(name);
            SafetensorsDType.TryGet(info.DType, out var storedType, out _);
            bool floating = storedType is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
            var outType = options.DType is ScalarType want && floating ? want : storedType;
            var (outDType, outSize) = SafetensorsDType.FromScalarType(outType, outName);
            long bytes = info.Shape.Aggregate(1L, (a, b) => a * b) * outSize;
            var transforms = plan.TransformsFor(name);
            Tensor? want0 = null;
            if (expected is not null && !expected.TryGetValue(outName, out want0))
                throw new SourceMismatchException($"the model has no tensor '{outName}'");
            Func<Stream, long> write;
            if (transforms.Count > 0)
            {
                folded++;
                write = s => copier.WriteFolded(name, outName, transforms, outType, want0, s);
            }
            else if (outType != storedType)
            {
                cast++;
                write = s => copier.WriteCast(name, outName, outType, want0, s);
            }
            else
            {
                copied++;
                write = s => copier.CopyRaw(name, outName, want0, s);
            }
            tensors.Add(new RawTensor(outName, outDType, info.Shape, bytes, s =>
            {
                cancellationToken.ThrowIfCancellationRequested();
                long n = write(s);
                copier.Done += n;
                progress?.Report(new PruningProgress("write", copier.Done / (double)Math.Max(1, copier.Planned), Message: outName));
                return n;
            }));
            writtenNames.Add(outName);
            totalBytes += bytes;
        }
        copier.Planned = totalBytes;
        if (expected is not null && expected.Keys.FirstOrDefault(k => !writtenNames.Contains(k)) is { } extra)
            throw new SourceMismatchException($"the model has a tensor '{extra}' that the source does not give");

        DiskSpace.EnsureFits(outDir, HfCheckpointFolder.ExpectedBytes(totalBytes, tensors.Count, configJson, source, options.ExtraFiles, options.ExtraTensorFiles),
            "the pruned checkpoint");
        LogStart(logger, source, config.NumHiddenLayers, pruned.NumHiddenLayers, plan.Description);
        using var output = OutputFolder.Create(outDir, options.Overwrite, [source]);
        HfCheckpointFolder.CopyCompanionFiles(source, output.Path, logger, cancellationToken);
        File.WriteAllText(Path.Combine(output.Path, HfCheckpointFolder.ConfigFileName), configJson + "\n", Utf8NoBom);
        var files = SafetensorsWriter.WriteRaw(output.Path, tensors, maxShard, metadata: null, cancellationToken);
        foreach (var (name, text) in options.ExtraFiles)
            File.WriteAllText(Path.Combine(output.Path, name), text, Utf8NoBom);
        foreach (var (fileName, fileTensors) in options.ExtraTensorFiles)
            SafetensorsWriter.WriteSingleFile(Path.Combine(output.Path, fileName), fileTensors, new Dictionary<string, string>(), cancellationToken);
        reader.CheckUnchanged("the pruned checkpoint was being written; nothing was written");
        cancellationToken.ThrowIfCancellationRequested();
        long written = files.Sum(f => new FileInfo(Path.Combine(output.Path, f)).Length);
        output.Commit();
        var report = new PrunedCheckpointReport(output.TargetPath, config.NumHiddenLayers, pruned.NumHiddenLayers, copied, folded, cast,
            copier.BytesRead, written, files, clock.Elapsed);
        LogDone(logger, report.Directory, report.BlockCount, report.TensorsCopied, report.TensorsFolded, report.BytesRead >> 20, report.BytesWritten >> 20, report.Elapsed.TotalSeconds);
        return report;
    }

    /// <summary>
    /// The free-space check of <see cref="Write(string, IReadOnlyList{CutTransform}, string, PrunedCheckpointOptions?, IProgress{PruningProgress}?, ILogger?, CancellationToken)"/>,
    /// made before a prune starts, when the cut is not chosen yet: the pruned checkpoint of <paramref name="sourceDir"/>
    /// with <paramref name="removedBlocks"/> blocks removed, in the source's dtypes, must fit on the file system of
    /// <paramref name="outDir"/> with the margin. The largest blocks are assumed removed, so a prune that fits is never refused.
    /// </summary>
    /// <param name="sourceDir">The model folder.</param>
    /// <param name="removedBlocks">Blocks the prune will remove in all.</param>
    /// <param name="outDir">The output folder (need not exist).</param>
    /// <returns>The bytes the check required (expected size plus margin).</returns>
    /// <exception cref="InsufficientDiskSpaceException">It does not fit.</exception>
    /// <exception cref="CheckpointFormatException">The source's config or tensors are missing or malformed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="removedBlocks"/> is negative.</exception>
    public static long CheckDiskSpace(string sourceDir, int removedBlocks, string outDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceDir);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        ArgumentOutOfRangeException.ThrowIfNegative(removedBlocks);
        var source = Path.GetFullPath(sourceDir);
        var config = ModelConfigJson.Load(Path.Combine(source, HfCheckpointFolder.ConfigFileName));
        using var reader = SafetensorsReader.Open(source);
        var blockBytes = new long[config.NumHiddenLayers];
        var blockTensors = new int[config.NumHiddenLayers];
        long other = 0;
        int otherTensors = 0;
        foreach (var name in reader.Names)
        {
            if (DecoderModel.IsIgnorableCheckpointKey(config, name)) continue;
            long bytes = reader.GetInfo(name).ByteCount;
            var m = BlockIndex().Match(name);
            int block = m.Success ? int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture) : -1;
            if (block >= 0 && block < blockBytes.Length)
            {
                blockBytes[block] += bytes;
                blockTensors[block]++;
            }
            else
            {
                other += bytes;
                otherTensors++;
            }
        }
        var keptBlocks = Enumerable.Range(0, blockBytes.Length).OrderBy(b => blockBytes[b]).Take(blockBytes.Length - Math.Min(removedBlocks, blockBytes.Length)).ToList();
        long kept = other + keptBlocks.Sum(b => blockBytes[b]);
        int count = otherTensors + keptBlocks.Sum(b => blockTensors[b]);
        var configJson = ModelConfigJson.ToJson(config).ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        long expected = HfCheckpointFolder.ExpectedBytes(kept, count, configJson, source, new Dictionary<string, string>(),
            new Dictionary<string, IReadOnlyList<KeyValuePair<string, Tensor>>>());
        DiskSpace.EnsureFits(outDir, expected, "the pruned checkpoint");
        return expected + DiskSpace.MarginFor(expected);
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.")]
    private static partial Regex BlockIndex();

    /// <summary>A single-file source stays one file; a sharded one keeps its largest shard's tensor bytes as the limit.</summary>
    private static long LikeSource(SafetensorsReader reader)
    {
        if (reader.FilePaths.Count <= 1) return long.MaxValue;
        return reader.Names.Select(reader.Locate).GroupBy(l => l.File, StringComparer.Ordinal).Max(g => g.Sum(l => l.Bytes));
    }

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    [LoggerMessage(EventId = 701, Level = LogLevel.Information, Message = "Streaming pruned checkpoint from {Source}: {From} -> {To} blocks ({Cuts})")]
    private static partial void LogStart(ILogger logger, string source, int from, int to, string cuts);

    [LoggerMessage(EventId = 702, Level = LogLevel.Information,
        Message = "Wrote {Directory} ({Blocks} blocks): {Copied} tensors copied, {Folded} folded; {ReadMiB} MiB read, {WrittenMiB} MiB written in {Seconds:F1} s")]
    private static partial void LogDone(ILogger logger, string directory, int blocks, int copied, int folded, long readMiB, long writtenMiB, double seconds);

    /// <summary>Which source blocks go, how the kept ones are renumbered, and which transforms fold into which block.</summary>
    private sealed partial class CutPlan
    {
        private readonly int[] _newIndex; // -1 for removed blocks
        private readonly Dictionary<int, List<Tensor>> _folds;

        private CutPlan(int[] newIndex, Dictionary<int, List<Tensor>> folds, ModelConfig pruned, string description)
        {
            _newIndex = newIndex;
            _folds = folds;
            PrunedConfig = pruned;
            Description = description;
        }

        public ModelConfig PrunedConfig { get; }

        public string Description { get; }

        public static CutPlan Create(ModelConfig config, IReadOnlyList<CutTransform> cuts)
        {
            int blocks = config.NumHiddenLayers, d = config.HiddenSize;
            if (cuts.Count == 0) throw new PruningException("No cut was given: the pruned checkpoint would equal the source.");
            var sorted = cuts.Select((c, i) => c ?? throw new ArgumentNullException(nameof(cuts), $"Cut {i} is null.")).OrderBy(c => c.Cut.Start).ToList();
            for (int i = 0; i < sorted.Count; i++)
            {
                sorted[i].Cut.Validate(blocks);
                if (i > 0 && sorted[i].Cut.Start < sorted[i - 1].Cut.End)
                    throw new PruningException($"Cuts {sorted[i - 1].Cut} and {sorted[i].Cut} overlap.");
            }
            if (sorted.Sum(c => c.Cut.Length) >= blocks)
                throw new PruningException($"The cuts remove {sorted.Sum(c => c.Cut.Length)} of {blocks} blocks; at least one must remain.");
            var newIndex = new int[blocks];
            int next = 0;
            for (int b = 0; b < blocks; b++)
                newIndex[b] = sorted.Any(c => b >= c.Cut.Start && b < c.Cut.End) ? -1 : next++;
            var folds = new Dictionary<int, List<Tensor>>();
            foreach (var c in sorted)
            {
                if (c.Transform is null) continue;
                var t = c.Transform;
                if (t.dim() != 2 || t.shape[0] != d || t.shape[1] != d)
                    throw new PruningException($"Transform for cut {c.Cut} has shape [{string.Join(", ", t.shape)}], expected [{d}, {d}].");
                if (!t.is_floating_point())
                    throw new PruningException($"Transform for cut {c.Cut} has dtype {t.dtype}; expected a floating-point tensor.");
                using (var scope = NewDisposeScope())
                    if (!t.isfinite().all().item<bool>())
                        throw new PruningException($"Transform for cut {c.Cut} contains NaN or infinite values; refusing to fold it.");
                int target = c.Cut.Start - 1;
                while (newIndex[target] < 0) target--; // block 0 is never removed
                if (!folds.TryGetValue(target, out var list)) folds[target] = list = [];
                list.Add(t);
            }
            var pruned = config;
            foreach (var c in sorted.AsEnumerable().Reverse()) pruned = pruned.WithBlocksRemoved(c.Cut.Start, c.Cut.End);
            var description = string.Join(" ", sorted.Select(c => $"{c.Cut}{(c.Transform is null ? " identity" : "")}"));
            return new CutPlan(newIndex, folds, pruned, description);
        }

        /// <summary>The output name of a source tensor, or null when its block is removed.</summary>
        public string? Rename(string name)
        {
            var m = LayerName().Match(name);
            if (!m.Success) return name;
            int block = int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture);
            int to = _newIndex[block];
            return to < 0 ? null : $"model.layers.{to}.{m.Groups[2].Value}";
        }

        /// <summary>The transforms, in application order, that fold into a source tensor (empty for all but down_proj).</summary>
        public List<Tensor> TransformsFor(string name)
        {
            var m = LayerName().Match(name);
            if (!m.Success || m.Groups[2].Value is not ("mlp.down_proj.weight" or "mlp.down_proj.bias")) return [];
            int block = int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture);
            return _folds.TryGetValue(block, out var list) ? list : [];
        }

        [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
        private static partial Regex LayerName();
    }

    /// <summary>Produces the output bytes of each tensor, counts what it reads and watches the source files.</summary>
    private sealed class Copier(SafetensorsReader reader, CancellationToken cancellationToken) : IDisposable
    {
        private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);
        private byte[]? _buffer;

        public long BytesRead { get; private set; }

        public long Done { get; set; }

        public long Planned { get; set; }

        public long CopyRaw(string name, string outName, Tensor? expected, Stream destination)
        {
            if (expected is not null)
            {
                using var stored = reader.Read(name);
                Compare(outName, stored, expected);
            }
            var (file, offset, bytes) = reader.Locate(name);
            reader.CheckUnchanged(file, $"tensor '{name}' was about to be copied; nothing was written");
            if (!_handles.TryGetValue(file, out var handle))
                _handles[file] = handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            _buffer ??= new byte[CopyBufferBytes];
            for (long done = 0; done < bytes;)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int want = (int)Math.Min(_buffer.Length, bytes - done);
                int got = RandomAccess.Read(handle, _buffer.AsSpan(0, want), offset + done);
                if (got <= 0)
                    throw new CheckpointFormatException($"Safetensors file '{file}' ended while tensor '{name}' was being copied: it changed while being read.");
                destination.Write(_buffer, 0, got);
                done += got;
            }
            reader.CheckUnchanged(file, $"tensor '{name}' was being copied; nothing was written");
            BytesRead += bytes;
            return bytes;
        }

        public long WriteCast(string name, string outName, ScalarType outType, Tensor? expected, Stream destination)
        {
            using var scope = NewDisposeScope();
            var stored = reader.Read(name);
            BytesRead += reader.GetInfo(name).ByteCount;
            if (expected is not null) Compare(outName, stored, expected);
            return TensorBytes.Write(stored, destination, outType);
        }

        public long WriteFolded(string name, string outName, IReadOnlyList<Tensor> transforms, ScalarType outType, Tensor? expected, Stream destination)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var w = reader.Read(name, ScalarType.Float64);                       // [d, d_ff] (weight) or [d] (bias)
            BytesRead += reader.GetInfo(name).ByteCount;
            foreach (var t in transforms)
                w = t.to(ScalarType.Float64, CPU).t().matmul(w);                // Tᵀ·W, in cut order
            if (!w.isfinite().all().item<bool>())
                throw new PruningException($"Folding the transform(s) into '{name}' gave NaN or infinite values.");
            if (expected is not null) Compare(outName, w, expected);
            return TensorBytes.Write(w, destination, outType);
        }

        /// <summary>Throws <see cref="SourceMismatchException"/> unless the produced tensor, in the model's dtype, equals it.</summary>
        private static void Compare(string outName, Tensor produced, Tensor expected)
        {
            using var scope = NewDisposeScope();
            if (!produced.shape.SequenceEqual(expected.shape) || !produced.to(expected.dtype, expected.device).equal(expected.detach()).all().item<bool>())
                throw new SourceMismatchException($"tensor '{outName}' differs from what the source folder and the cuts give");
        }

        public void Dispose()
        {
            foreach (var h in _handles.Values) h.Dispose();
        }
    }
}

/// <summary>
/// The in-memory model is not what its source folder and its cuts give (weights changed after loading, a different
/// surgeon, a lossy compute dtype, a different config): <c>PruningResult.Save</c> then writes from memory instead.
/// </summary>
internal sealed class SourceMismatchException(string reason) : Exception($"The model differs from its source folder: {reason}.");
