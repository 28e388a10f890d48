using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// The small surface through which pruning, calibration and evaluation see a decoder-only transformer:
/// embed, run a range of blocks (optionally capturing activations), apply the final norm and head, reach each
/// block's MLP down-projection, and remove blocks. Implement it to prune your own TorchSharp model.
/// </summary>
/// <remarks>
/// Conventions: blocks are 0-based; shapes are <c>[B, T]</c> for ids and masks (int64, mask 1 = real token,
/// 0 = padding) and <c>[B, T, d]</c> for hidden states. Block k computes
/// <c>Y = X + Attn(Norm1(X))</c>, <c>M = MLP(Norm2(Y))</c>, <c>out = Y + M</c>; capture reports X, M and out
/// (pre-final-norm). Implementations keep all compute on one thread.
/// <para>
/// <b>Ownership.</b> Neither <see cref="Embed"/> nor <see cref="RunBlocks"/> takes ownership of a tensor it is given:
/// the caller's ids, mask and batch stay intact and stay the caller's to dispose. The <see cref="DecoderState"/> that
/// <see cref="Embed"/> returns owns every tensor it holds; those tensors are in no TorchSharp dispose scope, so a
/// caller's scope never frees them, and <see cref="DecoderState.Dispose()"/> releases them. <see cref="RunBlocks"/>
/// replaces <see cref="DecoderState.Hidden"/> with a tensor the state owns in the same way and disposes the previous
/// one. What an <see cref="ActivationCapture"/> records is owned by the capture. <see cref="Head"/> returns a new tensor
/// in the caller's current dispose scope.
/// </para>
/// </remarks>
public interface ITransformerAdapter
{
    /// <summary>Current number of blocks.</summary>
    int BlockCount { get; }

    /// <summary>Residual stream width d.</summary>
    int HiddenSize { get; }

    /// <summary>Device holding the weights.</summary>
    Device Device { get; }

    /// <summary>Dtype of the computation (float32 on CPU by default).</summary>
    ScalarType DType { get; }

    /// <summary>Embeds a batch and prepares everything the blocks need (positions, masks, RoPE tables).</summary>
    /// <param name="inputIds">Token ids <c>[B, T]</c>, int64.</param>
    /// <param name="attentionMask">1 for real tokens, 0 for padding, <c>[B, T]</c>, int64; left or right padding.</param>
    /// <returns>A state whose <see cref="DecoderState.Hidden"/> is the embedding output <c>[B, T, d]</c>.</returns>
    DecoderState Embed(Tensor inputIds, Tensor attentionMask);

    /// <summary>
    /// Runs blocks <c>[startBlock, endBlock)</c> on <paramref name="state"/>, replacing <see cref="DecoderState.Hidden"/> with
    /// the output of block <c>endBlock - 1</c>. For every block the capture wants, reports its input, MLP output and output.
    /// </summary>
    void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null);

    /// <summary>Final norm and LM head on <see cref="DecoderState.Hidden"/>: logits <c>[B, T, vocab]</c>.</summary>
    Tensor Head(DecoderState state);

    /// <summary>The MLP down-projection of a block (<c>weight</c> is <c>[d, d_ff]</c>, optional <c>bias</c> <c>[d]</c>).</summary>
    TorchSharp.Modules.Linear GetDownProjection(int block);

    /// <summary>Deletes blocks <c>[startBlock, endBlock)</c> and renumbers the rest (cache slots, parameter names, config).</summary>
    void RemoveBlocks(int startBlock, int endBlock);
}
