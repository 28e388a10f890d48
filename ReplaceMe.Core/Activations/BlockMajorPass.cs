using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Activations;

/// <summary>Where a block-major pass keeps the hidden states between blocks.</summary>
/// <param name="RamBudgetBytes">Bytes of hidden states kept in RAM; the rest is spilled.</param>
/// <param name="SpillDirectory">Folder of the spill file; null uses the system's temporary folder.</param>
/// <param name="SpillDType">Dtype of spilled states (Float32 is exact for a float32 model).</param>
internal sealed record BlockMajorSettings(long RamBudgetBytes, string? SpillDirectory, ScalarType SpillDType);

/// <summary>
/// Runs calibration batches through blocks <c>[0, end)</c> block by block: block k runs over every batch before block
/// k + 1 starts, so a <see cref="StreamedDecoderModel"/> reads each block once per pass instead of once per batch. The
/// residual streams between blocks live in a <see cref="HiddenStateStore"/> (RAM up to a budget, then a spill file); each
/// (block, batch) step re-embeds the batch for its positions, mask and RoPE tables (small) and swaps in the stored stream.
/// The observer sees every (block, batch) in block order and, within a block, in batch order — so a consumer that
/// accumulates per batch in batch order gets exactly what the batch-major loop gives it.
/// </summary>
internal static class BlockMajorPass
{
    /// <summary>Runs the pass.</summary>
    /// <param name="model">The model.</param>
    /// <param name="batches">Calibration batches, in order.</param>
    /// <param name="endBlock">Blocks <c>[0, endBlock)</c> are run.</param>
    /// <param name="captureAt">Blocks whose input, MLP output and output the observer needs.</param>
    /// <param name="afterBlock">(block, batch index, state whose Hidden is the block's output, capture or null, the store —
    /// where an observer may park rows of its own under negative keys, within the same budget and spill file).</param>
    /// <param name="extraBytes">Bytes the observer will park in the store at most (for the free-space check).</param>
    /// <param name="settings">Store budget, spill folder and dtype.</param>
    /// <param name="stage">Progress stage name.</param>
    /// <param name="passName">Words for the progress line ("calibration pass").</param>
    /// <param name="progress">One report per block, with an ETA from the mean time per block so far.</param>
    /// <param name="cancellationToken">Checked before every (block, batch) step; the spill file goes with the store.</param>
    /// <param name="afterPass">Runs after the last block, before the store is disposed: reads what the observer parked.</param>
    public static void Run(
        ITransformerAdapter model, IReadOnlyList<TokenBatch> batches, int endBlock, Func<int, bool> captureAt,
        Action<int, int, DecoderState, BlockActivations?, HiddenStateStore> afterBlock, long extraBytes, BlockMajorSettings settings, string stage, string passName,
        IProgress<PruningProgress>? progress, CancellationToken cancellationToken, Action<HiddenStateStore>? afterPass = null)
    {
        using var store = new HiddenStateStore(settings.RamBudgetBytes, settings.SpillDirectory, settings.SpillDType);
        int elementSize = model.DType switch { ScalarType.Float64 => 8, ScalarType.Float32 => 4, _ => 2 };
        long total = batches.Sum(b => b.InputIds.shape[0] * b.InputIds.shape[1] * model.HiddenSize * elementSize);
        store.CheckSpace(total + extraBytes / 4 * elementSize, elementSize);
        var clock = Stopwatch.StartNew();
        using var noGrad = no_grad();
        for (int k = 0; k < endBlock; k++)
        {
            for (int b = 0; b < batches.Count; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var ids = batches[b].InputIds.to(model.Device);                      // [B, T]
                var mask = batches[b].AttentionMask.to(model.Device);                // [B, T]
                using var state = model.Embed(ids, mask);
                if (k > 0) state.Hidden = store.Take(b);                            // output of block k − 1
                using var capture = captureAt(k) ? new ActivationCapture([k]) : null;
                model.RunBlocks(state, k, k + 1, capture);
                afterBlock(k, b, state, capture?[k], store);
                if (k + 1 < endBlock) store.Put(b, state.Hidden.clone());
            }
            double perBlock = clock.Elapsed.TotalSeconds / (k + 1);
            var eta = TimeSpan.FromSeconds(Math.Round(perBlock * (endBlock - k - 1)));
            progress?.Report(new PruningProgress(stage, (k + 1.0) / endBlock, k,
                Message: string.Create(CultureInfo.InvariantCulture, $"block {k + 1}/{endBlock}: {passName}, ETA {Format(eta)}")));
        }
        afterPass?.Invoke(store);
    }

    /// <summary>"3m10s", "45s", "1h02m".</summary>
    internal static string Format(TimeSpan t) =>
        t.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}h{t.Minutes:00}m")
        : t.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalMinutes}m{t.Seconds:00}s")
        : string.Create(CultureInfo.InvariantCulture, $"{t.Seconds}s");
}
