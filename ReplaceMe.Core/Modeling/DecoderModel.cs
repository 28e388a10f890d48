using ReplaceMe.Core.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// A decoder-only transformer of the Llama family (Llama 1–3.2, Mistral, Qwen2/2.5, Qwen3, SmolLM, TinyLlama) in
/// TorchSharp, driven by a <see cref="ModelConfig"/>. Its <c>state_dict()</c> keys are exactly the Hugging Face keys
/// (<c>model.embed_tokens.weight</c>, <c>model.layers.{i}.self_attn.q_proj.weight</c>, …, <c>lm_head.weight</c>
/// unless the head is tied to the embedding). It implements <see cref="ITransformerAdapter"/> for pruning.
/// </summary>
/// <remarks>
/// Padding follows Hugging Face: position ids are cumsum(mask) − 1 clamped at 0 (a left-padded row starts at position 0
/// at its first real token), padded keys are masked, and fully masked query rows use the dtype's lowest finite value
/// instead of −∞ so they stay finite. All computation runs without autograd, except the internal forward that healing
/// trains through (DecoderModel.Training.cs).
/// Device and compute dtype are fixed when the model is built (<see cref="ModelLoadOptions"/>); do not move it with
/// TorchSharp's <c>to()</c>/<c>cuda()</c>, load it again on the other device instead.
/// </remarks>
public sealed partial class DecoderModel : nn.Module, ITransformerAdapter
{
    private readonly DecoderBody _body;
    private readonly Linear? _lmHead;
    private readonly RotaryEmbedding _rope;

    private DecoderModel(ModelConfig config, Device device, ScalarType dtype) : base(nameof(DecoderModel))
    {
        Config = config;
        Device = device;
        DType = dtype;
        _rope = new RotaryEmbedding(config);
        _body = new DecoderBody(config, device, dtype);
        register_module("model", _body);
        if (!config.TieWordEmbeddings)
        {
            _lmHead = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false, device, dtype);
            register_module("lm_head", _lmHead);
        }
        foreach (var p in parameters()) p.requires_grad = false;
    }

    /// <summary>The architecture; updated by <see cref="RemoveBlocks"/>.</summary>
    public ModelConfig Config { get; private set; }

    /// <inheritdoc/>
    public Device Device { get; }

    /// <inheritdoc/>
    public ScalarType DType { get; }

    /// <inheritdoc/>
    public int BlockCount => _body.Layers.Count;

    /// <inheritdoc/>
    public int HiddenSize => Config.HiddenSize;

    /// <summary>Token embedding matrix <c>[vocab, d]</c> (also the LM head when tied).</summary>
    internal Tensor EmbeddingWeight => _body.EmbedTokens.weight!;

    /// <summary>The LM head weight <c>[vocab, d]</c>: its own matrix, or the embedding when tied.</summary>
    internal Tensor HeadWeight => _lmHead?.weight ?? EmbeddingWeight;

    internal DecoderBlock Block(int index) => _body.Layers[index];

    internal RmsNorm FinalNorm => _body.Norm;

    /// <summary>Registration is explicit in the constructor so that state-dict keys are exactly the HF names.</summary>
    protected override void RegisterComponents() { }

    /// <summary>
    /// Full forward: logits <c>[B, T, vocab]</c> in the compute dtype. With a <paramref name="cache"/>, pass only the new
    /// tokens and their mask: the cache supplies (and then extends) the past keys, values and mask.
    /// </summary>
    /// <param name="inputIds">Token ids <c>[B, T]</c>, int64.</param>
    /// <param name="attentionMask">1 = token, 0 = padding, <c>[B, T]</c> (left or right padding).</param>
    /// <param name="cache">KV cache for incremental decoding, or null.</param>
    /// <exception cref="ArgumentException">Shapes disagree, or the cache holds another batch size.</exception>
    public Tensor Forward(Tensor inputIds, Tensor attentionMask, KvCache? cache = null)
        => ForwardCore(inputIds, attentionMask, cache, lastPositionOnly: false);

    /// <summary>Forward that applies the head to all positions or only the last one (<c>[B, 1, vocab]</c>, for generation).</summary>
    internal Tensor ForwardCore(Tensor inputIds, Tensor attentionMask, KvCache? cache, bool lastPositionOnly)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        using var state = EmbedCore(inputIds, attentionMask, cache);
        RunBlocks(state, 0, BlockCount);
        if (lastPositionOnly) state.Hidden = state.Hidden.narrow(1, state.Hidden.shape[1] - 1, 1);
        return Head(state).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public DecoderState Embed(Tensor inputIds, Tensor attentionMask) => EmbedCore(inputIds, attentionMask, null);

    internal DecoderState EmbedCore(Tensor inputIds, Tensor attentionMask, KvCache? cache)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (inputIds.dim() != 2 || !inputIds.shape.SequenceEqual(attentionMask.shape))
            throw new ArgumentException(
                $"inputIds [{string.Join(", ", inputIds.shape)}] and attentionMask [{string.Join(", ", attentionMask.shape)}] must both be [B, T].",
                nameof(attentionMask));
        if (cache is not null && cache.Length > 0 && cache.BatchSize != inputIds.shape[0])
            throw new ArgumentException($"The KV cache holds a batch of {cache.BatchSize} but inputIds has {inputIds.shape[0]} rows.", nameof(cache));
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var ids = inputIds.to(ScalarType.Int64, Device);
        ids = IdsInVocabulary(ids, attentionMask, Config.VocabSize);
        var mask = attentionMask.to(ScalarType.Int64, Device);
        var fullMask = cache?.Mask is { } past ? cat([past, mask], 1) : mask; // [B, Tpast + T]
        int pastLength = cache?.Length ?? 0;
        long t = ids.shape[1];
        var positions = fullMask.cumsum(1, ScalarType.Int64).sub(HeldScalars.One).clamp_min(HeldScalars.Zero).narrow(1, pastLength, t); // [B, T]
        var maskBias = BuildMaskBias(Config, Device, DType, fullMask, pastLength);
        int maxPosition = positions.numel() == 0 ? 0 : (int)positions.max().item<long>();
        var (cosT, sinT) = _rope.Tables(positions, maxPosition, DType);
        cache?.SetMask(fullMask);
        var hidden = _body.EmbedTokens.forward(ids); // [B, T, d]
        // The state owns what it holds: detached from every dispose scope, released by DecoderState.Dispose.
        var data = new DecoderModelData(positions.DetachFromDisposeScope(), maskBias.DetachFromDisposeScope(),
            cosT.DetachFromDisposeScope(), sinT.DetachFromDisposeScope(), cache);
        return new DecoderState(hidden.DetachFromDisposeScope(), mask.clone().DetachFromDisposeScope()) { ModelData = data };
    }

    /// <summary>
    /// <paramref name="ids"/> ready for the embedding lookup. A real token (mask ≠ 0) with an id outside
    /// <c>[0, vocab_size)</c> is an error: the lookup would fail in native code with a stack trace. Padding positions may
    /// hold any id (some tokenizers pad with -100); out-of-range ones are looked up as id 0, which no statistic reads.
    /// </summary>
    /// <exception cref="ReplaceMeException">A real token's id is out of range; the message names it and the vocabulary size.</exception>
    internal static Tensor IdsInVocabulary(Tensor ids, Tensor attentionMask, long vocab)
    {
        if (ids.numel() == 0) return ids;
        if (ids.min().item<long>() >= 0 && ids.max().item<long>() < vocab) return ids;
        var real = attentionMask.to(ScalarType.Bool, ids.device);
        var inRange = ids.ge(HeldScalars.Zero).logical_and(HeldScalars.LessThan(ids, vocab));
        var badReal = ids.masked_select(real.logical_and(inRange.logical_not()));
        if (badReal.numel() > 0)
            throw new ReplaceMeException(
                $"Token id {badReal[0].item<long>()} is outside the model's vocabulary [0, {vocab}) (vocab_size in config.json); the tokenizer does not match this model.");
        return torch.where(inRange, ids, zeros_like(ids));
    }

    /// <summary>
    /// Additive bias <c>[B, 1, T, Tk]</c>: key j is visible to query i (sequence index pastLength + i) when it is a real token,
    /// not in the future, and, with a sliding window W, when i − j &lt; W.
    /// </summary>
    internal static Tensor BuildMaskBias(ModelConfig config, Device device, ScalarType dtype, Tensor fullMask, int pastLength)
    {
        using var scope = NewDisposeScope();
        long total = fullMask.shape[1], t = total - pastLength;
        var keyIndex = HeldScalars.Arange(0, total, device).unsqueeze(0);                          // [1, Tk]
        var queryIndex = HeldScalars.Arange(pastLength, total, device).unsqueeze(1);              // [T, 1]
        var allowed = keyIndex <= queryIndex;                                                     // [T, Tk]
        if (config.SlidingWindow is int window)
        {
            allowed = allowed.logical_and(HeldScalars.LessThan(queryIndex.sub(keyIndex), window));
        }
        allowed = allowed.unsqueeze(0).unsqueeze(0).logical_and(fullMask.to(ScalarType.Bool).unsqueeze(1).unsqueeze(1)); // [B, 1, T, Tk]
        var bias = HeldScalars.MaskedFill(zeros([fullMask.shape[0], 1, t, total], dtype, device), allowed.logical_not(), finfo(dtype).min);
        return bias.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.ModelData is not DecoderModelData data)
            throw new ArgumentException("The state was not produced by this model's Embed.", nameof(state));
        if (startBlock < 0 || endBlock > BlockCount || startBlock > endBlock)
            throw new ArgumentOutOfRangeException(nameof(startBlock), $"Block range [{startBlock}, {endBlock}) must lie inside [0, {BlockCount}].");
        using var noGrad = no_grad();
        for (int i = startBlock; i < endBlock; i++)
        {
            using var scope = NewDisposeScope();
            var (output, mlpOutput) = _body.Layers[i].Forward(state.Hidden, data);
            if (capture is not null && capture.Wants(i)) capture.Record(i, state.Hidden, mlpOutput, output);
            state.Hidden = output.DetachFromDisposeScope(); // owned by the state (see ITransformerAdapter)
        }
    }

    /// <inheritdoc/>
    public Tensor Head(DecoderState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var normed = _body.Norm.forward(state.Hidden);                 // [B, T, d]
        var logits = nn.functional.linear(normed, HeadWeight);        // [B, T, vocab]
        return logits.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Linear GetDownProjection(int block)
    {
        if (block < 0 || block >= BlockCount)
            throw new ArgumentOutOfRangeException(nameof(block), $"Block {block} does not exist (the model has {BlockCount}).");
        return _body.Layers[block].Mlp.DownProj;
    }

    /// <inheritdoc/>
    public void RemoveBlocks(int startBlock, int endBlock)
    {
        if (startBlock < 0 || endBlock > BlockCount || startBlock >= endBlock)
            throw new ArgumentOutOfRangeException(nameof(startBlock), $"Cut [{startBlock}, {endBlock}) must be a non-empty range inside [0, {BlockCount}).");
        var newConfig = Config.WithBlocksRemoved(startBlock, endBlock);
        _body.Layers.RemoveRange(startBlock, endBlock);
        Config = newConfig;
    }
}
