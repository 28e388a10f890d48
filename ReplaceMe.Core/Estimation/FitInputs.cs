using ReplaceMe.Core.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Estimation;

/// <summary>Checks shared by every fit: batch shapes, finite values, enough data.</summary>
internal static class FitInputs
{
    /// <summary>Throws unless X, Y and target are <c>[N, d]</c> with the same N, and all values are finite.</summary>
    /// <exception cref="ArgumentException">Shapes disagree.</exception>
    /// <exception cref="PruningException">NaN or ±Inf in a tensor; the message names the cut and the block.</exception>
    public static void Check(BlockCut cut, int hiddenSize, Tensor mlpOutput, Tensor attentionResidual, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(mlpOutput);
        ArgumentNullException.ThrowIfNull(attentionResidual);
        ArgumentNullException.ThrowIfNull(target);
        long n = mlpOutput.dim() == 2 ? mlpOutput.shape[0] : -1;
        foreach (var (t, name) in new[] { (mlpOutput, nameof(mlpOutput)), (attentionResidual, nameof(attentionResidual)), (target, nameof(target)) })
        {
            if (t.dim() != 2 || t.shape[0] != n || t.shape[1] != hiddenSize)
                throw new ArgumentException(
                    $"Cut {cut}: {name} must be [N, {hiddenSize}] with the same N as the MLP output; got [{string.Join(", ", t.shape)}].", name);
            if (!t.is_floating_point())
                throw new ArgumentException($"Cut {cut}: {name} must be a floating-point tensor; got {t.dtype}.", name);
        }
        CheckFinite(cut, mlpOutput, $"the MLP output of block {cut.FoldBlock} (X)");
        CheckFinite(cut, attentionResidual, $"the attention residual of block {cut.FoldBlock} (Y)");
        CheckFinite(cut, target, $"the output of block {cut.End - 1} (target)");
    }

    /// <summary>Throws when nothing was accumulated.</summary>
    public static void RequireTokens(BlockCut cut, long tokens)
    {
        if (tokens <= 0)
            throw new PruningException($"Cut {cut}: no valid calibration tokens were accumulated; feed at least one batch before completing the fit.");
    }

    /// <summary>Throws when the transform has a NaN or ±Inf.</summary>
    public static void RequireFiniteTransform(BlockCut cut, Tensor transform, string estimator)
    {
        if (!transform.isfinite().all().item<bool>())
            throw new PruningException($"Cut {cut}: the {estimator} estimator produced a transform with NaN or infinite entries.");
    }

    private static void CheckFinite(BlockCut cut, Tensor t, string what)
    {
        using var scope = NewDisposeScope();
        if (!t.isfinite().all().item<bool>())
            throw new PruningException($"Cut {cut}: non-finite values (NaN or Inf) in {what}; the calibration forward overflowed or the model weights are corrupt.");
    }
}
