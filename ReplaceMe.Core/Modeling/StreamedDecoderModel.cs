using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// A Llama-family model run straight from its checkpoint folder with at most one block's weights resident: the same
/// computation as <see cref="DecoderModel"/> (same results), for models that do not fit in memory (docs/streaming.md).
/// </summary>
/// <remarks>
/// <para>What stays resident: the config, the final norm, the RoPE tables of the current batch, one
/// <see cref="DecoderBlock"/> whose weights are overwritten from the checkpoint whenever another block is run (read with
/// positioned reads, so the pages read do not count in the process's resident set; converted to the compute dtype and
/// device; checked for NaN/Inf tensor by tensor), and the pinned down-projections handed out by
/// <see cref="GetDownProjection"/>. <see cref="Embed"/> reads only the embedding rows of the batch's token ids;
/// <see cref="Head"/> reads the LM head (or the tied embedding) in chunks of rows. Nothing of size O(model) is ever held.</para>
/// <para>Running the batches one after the other through every block re-reads every block per batch: correct for every
/// feature, and the block-major passes of the pruning pipeline and of <c>ModelEvaluator</c> (with a chunk-major LM head)
/// avoid it where they can.</para>
/// <para><see cref="GetDownProjection"/> returns a <see cref="Linear"/> that stays resident for the model's lifetime (a
/// pinned override): in-place changes to it (folding a transform, restoring saved weights) are what later runs of that
/// block use. <see cref="RemoveBlocks"/> only renumbers. The pruned checkpoint of a pruning result on this model is
/// written from the source folder by <c>PrunedCheckpointWriter</c> (see <c>PruningResult.Save</c>).</para>
/// Not thread-safe; all compute stays on the calling thread.
/// </remarks>
public sealed partial class StreamedDecoderModel : ITransformerAdapter, IDisposable
{
    private readonly SafetensorsReader _reader;
    private readonly PositionedTensorReader _tensors;
    private readonly RotaryEmbedding _rope;
    private readonly RmsNorm _finalNorm;
    private readonly List<int> _kept;                            // current block -> source block
    private readonly Dictionary<int, Linear> _pinned = [];       // source block -> resident down-projection
    private DecoderBlock? _block;
    private int _residentSource = -1;
    private bool _disposed;

    private StreamedDecoderModel(string directory, ModelConfig config, SafetensorsReader reader, Device device, ScalarType dtype)
    {
        SourceDirectory = directory;
        SourceConfig = config;
        Config = config;
        Device = device;
        DType = dtype;
        _reader = reader;
        _tensors = new PositionedTensorReader(reader);
        _rope = new RotaryEmbedding(config);
        _finalNorm = Owned(new RmsNorm(config.HiddenSize, config.RmsNormEps, device, dtype));
        _kept = [.. Enumerable.Range(0, config.NumHiddenLayers)];
    }

    /// <summary>The checkpoint folder the weights are read from (full path).</summary>
    public string SourceDirectory { get; }

    /// <summary>The architecture, updated by <see cref="RemoveBlocks"/>.</summary>
    public ModelConfig Config { get; private set; }

    /// <summary>The source checkpoint's architecture (before any removal).</summary>
    public ModelConfig SourceConfig { get; }

    /// <inheritdoc/>
    public Device Device { get; }

    /// <inheritdoc/>
    public ScalarType DType { get; }

    /// <inheritdoc/>
    public int BlockCount => _kept.Count;

    /// <inheritdoc/>
    public int HiddenSize => Config.HiddenSize;

    /// <summary>The source block behind each current block, in order (removed blocks are absent).</summary>
    public IReadOnlyList<int> SourceBlocks => _kept;

    /// <summary>Bytes of one block's weights in the compute dtype: what a block load holds resident.</summary>
    public long BlockBytes => DecoderModel.WeightBytes(SourceConfig with { NumHiddenLayers = 1 }, DType) - NonBlockBytes(SourceConfig, DType);

    /// <summary>Largest LM-head chunk in the compute dtype, in bytes (tests lower it to exercise the chunking).</summary>
    internal long HeadChunkBytes { get; set; } = 64L << 20;

    /// <summary>Times a block's weights were read from the checkpoint (for tests and diagnostics).</summary>
    internal int BlockLoads { get; private set; }

    /// <summary>Most decoder blocks allocated at the same time: one (for tests).</summary>
    internal int PeakBlocksAllocated { get; private set; }

    private int _blocksAllocated;

    /// <summary>Tensor bytes read from the checkpoint so far.</summary>
    internal long BytesRead => _tensors.BytesRead;

    /// <summary>
    /// Opens a Hugging Face checkpoint folder for streamed execution, with the checks of
    /// <see cref="DecoderModel.FromPretrained"/>: <c>config.json</c>, every tensor name and shape against the config (before
    /// anything is allocated), and NaN/Inf per tensor as it is read. Hub-cache folders of symlinks work.
    /// </summary>
    /// <param name="directory">The checkpoint folder.</param>
    /// <param name="options">Device and compute dtype; CPU float32 when null.</param>
    /// <param name="logger">Receives one line.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">Config or tensors missing, malformed, or not matching the config.</exception>
    /// <exception cref="UnsupportedModelException">The model type, RoPE scaling or dtype is not supported.</exception>
    public static StreamedDecoderModel Open(string directory, ModelLoadOptions? options = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        logger ??= NullLogger.Instance;
        TorchRuntime.EnsureLoaded(logger);
        options ??= new ModelLoadOptions();
        var full = Path.GetFullPath(directory);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Model folder '{full}' does not exist.");
        var config = ModelConfigJson.Load(Path.Combine(full, HfCheckpointFolder.ConfigFileName));
        DecoderModel.Validate(config);
        if (!Precision.IsSupportedCompute(options.DType))
            throw new UnsupportedModelException($"Compute dtype {options.DType} is not supported (use Float32, Float64, BFloat16 or Float16).");
        var reader = SafetensorsReader.Open(full);
        try
        {
            DecoderModel.CheckTensors(DecoderModel.ExpectedShapes(config), config, reader.Names, name => reader.GetInfo(name).Shape, $"checkpoint '{reader.Source}'");
            var model = new StreamedDecoderModel(full, config, reader, options.ResolvedDevice, options.DType);
            try
            {
                using var noGrad = no_grad();
                model.CopyChecked(model._finalNorm.Weight, "model.norm.weight");
            }
            catch
            {
                model.Dispose();
                throw;
            }
            var deviceName = model.Device.ToString();
            long blockMiB = model.BlockBytes >> 20;
            LogOpened(logger, full, config.ModelType, config.NumHiddenLayers, options.DType, deviceName, blockMiB);
            return model;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public DecoderState Embed(Tensor inputIds, Tensor attentionMask)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (inputIds.dim() != 2 || !inputIds.shape.SequenceEqual(attentionMask.shape))
            throw new ArgumentException(
                $"inputIds [{string.Join(", ", inputIds.shape)}] and attentionMask [{string.Join(", ", attentionMask.shape)}] must both be [B, T].",
                nameof(attentionMask));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = DecoderModel.IdsInVocabulary(inputIds.to(ScalarType.Int64, CPU), attentionMask.to(ScalarType.Int64, CPU), Config.VocabSize);
        var mask = attentionMask.to(ScalarType.Int64, Device);
        var positions = mask.cumsum(1, ScalarType.Int64).sub(HeldScalars.One).clamp_min(HeldScalars.Zero); // [B, T]
        var maskBias = DecoderModel.BuildMaskBias(Config, Device, DType, mask, 0);
        int maxPosition = positions.numel() == 0 ? 0 : (int)positions.max().item<long>();
        var (cosT, sinT) = _rope.Tables(positions, maxPosition, DType);
        var hidden = EmbeddingRows(ids);                                       // [B, T, d]
        var data = new DecoderModelData(positions.DetachFromDisposeScope(), maskBias.DetachFromDisposeScope(),
            cosT.DetachFromDisposeScope(), sinT.DetachFromDisposeScope(), null);
        return new DecoderState(hidden.DetachFromDisposeScope(), mask.clone().DetachFromDisposeScope()) { ModelData = data };
    }

    /// <summary>The embedding of <paramref name="ids"/> <c>[B, T]</c> (CPU int64): only the distinct ids' rows are read.</summary>
    private Tensor EmbeddingRows(Tensor ids)
    {
        const string name = "model.embed_tokens.weight";
        long b = ids.shape[0], t = ids.shape[1];
        var flat = ids.contiguous().data<long>().ToArray();
        var distinct = flat.Distinct().Order().ToList();
        var slot = new Dictionary<long, long>(distinct.Count);
        for (int i = 0; i < distinct.Count; i++) slot[distinct[i]] = i;
        using var stored = _tensors.Gather(name, distinct);                       // [U, d] stored dtype
        var rows = stored.to(DType, Device);
        CheckFinite(rows, name);
        var index = tensor(flat.Select(id => slot[id]).ToArray(), ScalarType.Int64, Device);
        return rows.index_select(0, index).view(b, t, Config.HiddenSize);
    }

    /// <inheritdoc/>
    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        if (state.ModelData is not DecoderModelData data)
            throw new ArgumentException("The state was not produced by this model's Embed.", nameof(state));
        if (startBlock < 0 || endBlock > BlockCount || startBlock > endBlock)
            throw new ArgumentOutOfRangeException(nameof(startBlock), $"Block range [{startBlock}, {endBlock}) must lie inside [0, {BlockCount}].");
        using var noGrad = no_grad();
        for (int i = startBlock; i < endBlock; i++)
        {
            var block = Resident(i);
            using var scope = NewDisposeScope();
            var (output, mlpOutput) = block.Forward(state.Hidden, data);
            if (capture is not null && capture.Wants(i)) capture.Record(i, state.Hidden, mlpOutput, output);
            state.Hidden = output.DetachFromDisposeScope();
        }
    }

    /// <summary>
    /// Makes current block <paramref name="block"/> the resident one (reading it unless it already is) and returns it.
    /// Other blocks' weights are overwritten: at most one block is resident.
    /// </summary>
    internal DecoderBlock Resident(int block)
    {
        int source = _kept[block];
        if (_block is null)
        {
            _block = Owned(new DecoderBlock(SourceConfig, 0, Device, DType));
            _blocksAllocated++;
            PeakBlocksAllocated = Math.Max(PeakBlocksAllocated, _blocksAllocated);
        }
        _block.LayerIndex = block;
        using var noGrad = no_grad();
        if (_residentSource != source)
        {
            _residentSource = -1; // a failed read leaves no block claimed as resident
            foreach (var (name, parameter) in _block.named_parameters())
            {
                if (_pinned.ContainsKey(source) && name.StartsWith("mlp.down_proj.", StringComparison.Ordinal)) continue;
                CopyChecked(parameter, $"model.layers.{source}.{name}");
            }
            _residentSource = source;
            BlockLoads++;
        }
        // A pinned down-projection may have changed since the last run (a fold, a rollback): copy it every time.
        if (_pinned.TryGetValue(source, out var pinned))
        {
            _block.Mlp.DownProj.weight!.copy_(pinned.weight!);
            if (pinned.bias is not null) _block.Mlp.DownProj.bias!.copy_(pinned.bias);
        }
        return _block;
    }

    /// <inheritdoc/>
    public Tensor Head(DecoderState state)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(state);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var normed = _finalNorm.forward(state.Hidden);                                  // [B, T, d]
        long vocab = Config.VocabSize, chunk = HeadChunkRows;
        var parts = new List<Tensor>();
        for (long first = 0; first < vocab; first += chunk)
        {
            using var weight = ReadHeadChunk(first, Math.Min(chunk, vocab - first));     // [n, d]
            parts.Add(nn.functional.linear(normed, weight));                            // [B, T, n]
        }
        return cat(parts, -1).MoveToOuterDisposeScope();                               // [B, T, vocab]
    }

    /// <summary>Rows of the LM head per chunk read by <see cref="Head"/> and <see cref="ReadHeadChunk"/> (from <see cref="HeadChunkBytes"/>).</summary>
    internal long HeadChunkRows => Math.Max(1, HeadChunkBytes / ((long)Config.HiddenSize * ElementSize(DType)));

    /// <summary>Times a chunk of the LM head (or tied embedding) was read (for tests and diagnostics).</summary>
    internal int HeadChunkReads { get; private set; }

    /// <summary>The final RMSNorm applied to <paramref name="hidden"/> (<c>[…, d]</c>): what <see cref="Head"/> multiplies by the LM head.</summary>
    internal Tensor FinalNorm(Tensor hidden)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var noGrad = no_grad();
        return _finalNorm.forward(hidden);
    }

    /// <summary>Rows <c>[first, first + count)</c> of the LM head (or the tied embedding), read from the checkpoint,
    /// converted to the compute dtype and device and checked for NaN/Inf: <c>[count, d]</c>, owned by the caller.</summary>
    internal Tensor ReadHeadChunk(long first, long count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        string name = Config.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var stored = _tensors.ReadRows(name, first, count);
        var weight = stored.to(DType, Device);
        CheckFinite(weight, name);
        HeadChunkReads++;
        return weight.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    /// <remarks>The returned module stays resident (pinned) and is what later runs of the block use.</remarks>
    public Linear GetDownProjection(int block)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (block < 0 || block >= BlockCount)
            throw new ArgumentOutOfRangeException(nameof(block), $"Block {block} does not exist (the model has {BlockCount}).");
        int source = _kept[block];
        if (_pinned.TryGetValue(source, out var linear)) return linear;
        ReleaseResident(); // a fold (float64 copies of the matrix) follows: do not hold a block beside it
        linear = Owned(nn.Linear(SourceConfig.IntermediateSize, SourceConfig.HiddenSize, SourceConfig.MlpBias, Device, DType));
        try
        {
            using var noGrad = no_grad();
            CopyChecked(linear.weight!, $"model.layers.{source}.mlp.down_proj.weight");
            if (linear.bias is { } bias) CopyChecked(bias, $"model.layers.{source}.mlp.down_proj.bias");
        }
        catch
        {
            linear.Dispose();
            throw;
        }
        _pinned[source] = linear;
        return linear;
    }

    /// <inheritdoc/>
    public void RemoveBlocks(int startBlock, int endBlock)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (startBlock < 0 || endBlock > BlockCount || startBlock >= endBlock)
            throw new ArgumentOutOfRangeException(nameof(startBlock), $"Cut [{startBlock}, {endBlock}) must be a non-empty range inside [0, {BlockCount}).");
        var newConfig = Config.WithBlocksRemoved(startBlock, endBlock);
        foreach (int source in _kept.GetRange(startBlock, endBlock - startBlock))
            if (_pinned.Remove(source, out var gone)) gone.Dispose();
        _kept.RemoveRange(startBlock, endBlock - startBlock);
        Config = newConfig;
    }

    /// <summary>Frees the resident block's weights (the next run of any block reads it again).</summary>
    internal void ReleaseResident()
    {
        if (_block is null) return;
        _block.Dispose();
        _block = null;
        _blocksAllocated--;
        _residentSource = -1;
    }

    /// <summary>Releases the resident block, the pinned down-projections and the open checkpoint files.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ReleaseResident();
        foreach (var l in _pinned.Values) l.Dispose();
        _pinned.Clear();
        _finalNorm.Dispose();
        _tensors.Dispose();
        _reader.Dispose();
    }

    /// <summary>
    /// Takes the module's parameters out of any caller's dispose scope (modules are built on demand, often inside one)
    /// and switches off their gradients: the model owns them until <see cref="Dispose"/>.
    /// </summary>
    private static T Owned<T>(T module) where T : nn.Module
    {
        foreach (var p in module.parameters())
        {
            p.DetachFromDisposeScope();
            p.requires_grad = false;
        }
        foreach (var b in module.buffers()) b.DetachFromDisposeScope();
        return module;
    }

    /// <summary>Reads checkpoint tensor <paramref name="name"/> into <paramref name="target"/> (converted) and refuses NaN/Inf.</summary>
    private void CopyChecked(Tensor target, string name)
    {
        using var scope = NewDisposeScope();
        using var stored = _tensors.Read(name);
        target.copy_(stored);
        CheckFinite(target, name);
    }

    private void CheckFinite(Tensor values, string name)
    {
        using var scope = NewDisposeScope();
        if (values.isfinite().all().item<bool>()) return;
        long bad = values.isfinite().logical_not().sum().item<long>();
        throw new CheckpointFormatException(
            $"Tensor '{name}' in checkpoint '{_reader.Source}' has {bad} NaN or infinite value(s) after conversion to {DType}: the checkpoint is corrupt" +
            (DType is ScalarType.Float16 ? " or its values overflow float16 (load it as float32 or bfloat16)." : "."));
    }

    private static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        _ => 2,
    };

    /// <summary>Bytes of the embedding, final norm and LM head in <paramref name="dtype"/>.</summary>
    private static long NonBlockBytes(ModelConfig config, ScalarType dtype) =>
        DecoderModel.WeightBytes(config with { NumHiddenLayers = 0 }, dtype);

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Opened {ModelType} model with {Blocks} blocks from {Directory} for streamed execution as {DType} on {Device} (one block resident: {BlockMiB} MiB)")]
    private static partial void LogOpened(ILogger logger, string directory, string modelType, int blocks, ScalarType dtype, string device, long blockMiB);
}
