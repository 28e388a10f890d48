using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Surgery;
using ReplaceMe.Core.Tokenizers;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Pruning;

internal static class PipelineFixtures
{
    /// <summary>Random token sequences of varying length (3..maxLen), seeded.</summary>
    public static List<IReadOnlyList<int>> Sequences(int count, int maxLen, int vocab, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count)
            .Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, rng.Next(3, maxLen + 1)).Select(_ => rng.Next(1, vocab)).ToArray())
            .ToList();
    }

    public static List<TokenBatch> Batches(IReadOnlyList<IReadOnlyList<int>> sequences, int batchSize, PaddingSide side = PaddingSide.Right) =>
        [.. ReplaceMe.Core.Calibration.CalibrationBatches.Batch(sequences, 0, batchSize, side)];

    public static void DisposeAll(IEnumerable<TokenBatch> batches)
    {
        foreach (var b in batches) b.Dispose();
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }
}

/// <summary>Records the cuts it is asked to apply, then delegates to the real surgeon.</summary>
internal sealed class RecordingSurgeon : IModelSurgeon
{
    private readonly ModelSurgeon _inner = new();
    public List<BlockCut> Applied { get; } = [];

    public void Apply(ITransformerAdapter model, BlockCut cut, Tensor? transform)
    {
        Applied.Add(cut);
        _inner.Apply(model, cut, transform);
    }
}
