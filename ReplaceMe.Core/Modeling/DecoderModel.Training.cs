using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

/// <summary>The one forward that records an autograd graph (used by healing); everything else runs without gradients.</summary>
public sealed partial class DecoderModel
{
    /// <summary>
    /// Logits <c>[N, vocab]</c> at the flat positions <paramref name="flatPositions"/> (indices into <c>B·T</c>) of a batch.
    /// Blocks <c>[0, firstGradBlock)</c> and the embedding run without gradients; blocks from
    /// <paramref name="firstGradBlock"/> on, the final norm and the head run with autograd enabled, so a backward pass
    /// reaches every parameter there whose <c>requires_grad</c> is set (the caller sets it on the parameters it trains
    /// and nowhere else). The result is in the caller's dispose scope.
    /// </summary>
    internal Tensor LogitsWithGradient(Tensor inputIds, Tensor attentionMask, Tensor flatPositions, int firstGradBlock)
    {
        if (firstGradBlock < 0 || firstGradBlock >= BlockCount)
            throw new ArgumentOutOfRangeException(nameof(firstGradBlock), $"Block {firstGradBlock} does not exist (the model has {BlockCount}).");
        using var scope = NewDisposeScope();
        using var state = Embed(inputIds, attentionMask);
        RunBlocks(state, 0, firstGradBlock);
        var data = (DecoderModelData)state.ModelData!;
        using var grad = enable_grad();
        var hidden = state.Hidden;
        for (int i = firstGradBlock; i < BlockCount; i++) hidden = _body.Layers[i].Forward(hidden, data).Output;
        var rows = hidden.reshape(-1, HiddenSize).index_select(0, flatPositions);   // [N, d]
        var logits = nn.functional.linear(_body.Norm.forward(rows), HeadWeight);    // [N, vocab]
        return logits.MoveToOuterDisposeScope();
    }
}
