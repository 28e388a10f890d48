using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Selection;
using ReplaceMe.Core.Tokenizers;
using static ReplaceMe.Core.Tests.Selection.SelectionFixtures;

namespace ReplaceMe.Core.Tests.Selection;

public class DistanceProfilerTests
{
    private const int Blocks = 6, Dim = 8, Vocab = 16;

    private static ToyDecoder Model() =>
        ToyDecoder.Random(seed: 11, Dim, Vocab, attnScales: [0.8, 0.5, 0.3, 0.6, 0.2, 0.9], mlpScales: [1.0, 0.4, 0.7, 0.3, 0.5, 1.2]);

    [Theory]
    [InlineData(PaddingSide.Right, DistanceMetric.Angular, DistanceTokens.LastToken)]
    [InlineData(PaddingSide.Left, DistanceMetric.Angular, DistanceTokens.LastToken)]
    [InlineData(PaddingSide.Right, DistanceMetric.Cosine, DistanceTokens.AllTokens)]
    [InlineData(PaddingSide.Left, DistanceMetric.Angular, DistanceTokens.AllTokens)]
    public void Every_cut_equals_the_float64_reference(PaddingSide side, DistanceMetric metric, DistanceTokens tokens)
    {
        using var model = Model();
        var sequences = Sequences(seed: 3, count: 5, minLength: 2, maxLength: 7, Vocab);
        using var batch = Batch(sequences, side);
        var profile = new DistanceProfiler().Measure(model, [batch], Blocks - 1, metric, tokens);

        var states = States(model, batch);
        Assert.Equal(5, profile.Sequences);
        Assert.Equal(Blocks, profile.BlockCount);
        Assert.Equal(Blocks - 1, profile.MaxLength);
        for (int n = 1; n < Blocks; n++)
            for (int s = 1; s < Blocks; s++)
            {
                if (s + n > Blocks) { Assert.True(double.IsNaN(profile[s, n]), $"[{s}, {s + n}) does not fit"); continue; }
                double expected = Reference(states, s, n, metric == DistanceMetric.Angular, tokens == DistanceTokens.LastToken);
                Assert.True(Math.Abs(expected - profile[s, n]) < 1e-6, $"[{s},{s + n}): expected {expected}, got {profile[s, n]}");
                Assert.True(expected > 1e-3, "the toy blocks all change the state");
            }
    }

    [Theory]
    [InlineData(DistanceTokens.LastToken)]
    [InlineData(DistanceTokens.AllTokens)]
    public void Profile_is_invariant_to_padding_side_and_batch_composition(DistanceTokens tokens)
    {
        using var model = Model();
        var sequences = Sequences(seed: 5, count: 6, minLength: 1, maxLength: 9, Vocab);
        var profiler = new DistanceProfiler();
        using var right = Batch(sequences, PaddingSide.Right);
        using var leftA = Batch(sequences.Take(4), PaddingSide.Left);
        using var leftB = Batch(sequences.Skip(4), PaddingSide.Left);
        var singles = sequences.Select(s => Batch([s], PaddingSide.Right)).ToList();
        try
        {
            var reference = profiler.Measure(model, [right], 3, tokens: tokens);
            var split = profiler.Measure(model, [leftA, leftB], 3, tokens: tokens);
            var single = profiler.Measure(model, singles, 3, tokens: tokens);
            Assert.Equal(6, reference.Sequences);
            Assert.Equal(6, split.Sequences);
            Assert.Equal(6, single.Sequences);
            for (int n = 1; n <= 3; n++)
                for (int s = 1; s + n <= Blocks; s++)
                {
                    Assert.Equal(reference[s, n], split[s, n], 1e-6);
                    Assert.Equal(reference[s, n], single[s, n], 1e-6);
                }
        }
        finally
        {
            singles.ForEach(b => b.Dispose());
        }
    }

    [Fact]
    public void Measuring_stops_before_the_head_and_leaves_the_model_and_batches_intact()
    {
        using var model = Model();
        using var batch = Batch(Sequences(1, 3, 2, 5, Vocab), PaddingSide.Left);
        var progress = new List<PruningProgress>();
        var profile = new DistanceProfiler().Measure(model, [batch, batch], 2, progress: new SyncProgress(progress));
        Assert.Equal(0, model.HeadCalls);
        Assert.Equal(Blocks, model.BlockCount);
        Assert.Equal(3 * 2, profile.Sequences);
        Assert.Equal(2, progress.Count);
        Assert.Equal(1.0, progress[^1].Fraction);
        Assert.Equal(3, batch.Count);
        Assert.Equal(3, batch.InputIds.shape[0]); // the batch's tensors are still alive
    }

    [Fact]
    public void Best_cut_is_the_argmin_and_lowest_start_wins_ties()
    {
        var profile = new DistanceProfile(5, DistanceMetric.Angular, DistanceTokens.LastToken,
            [[0.5, 0.2, 0.2, 0.9], [0.4, 0.3, 0.1, double.NaN]], 10);
        Assert.Equal(new BlockCut(2, 3), DistanceProfiler.BestCut(profile, 1));
        Assert.Equal(new BlockCut(3, 5), DistanceProfiler.BestCut(profile, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => DistanceProfiler.BestCut(profile, 3));
    }

    [Fact]
    public void Bad_lengths_and_empty_data_are_clear_errors()
    {
        using var model = Model();
        using var batch = Batch(Sequences(1, 2, 2, 4, Vocab), PaddingSide.Right);
        var profiler = new DistanceProfiler();
        var tooLong = Assert.Throws<ArgumentOutOfRangeException>(() => profiler.Measure(model, [batch], Blocks));
        Assert.Contains("1..5", tooLong.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => profiler.Measure(model, [batch], 0));
        var empty = Assert.Throws<PruningException>(() => profiler.Measure(model, [], 2));
        Assert.Contains("no real token", empty.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Cancellation_is_honoured_between_batches()
    {
        using var model = Model();
        using var batch = Batch(Sequences(1, 2, 2, 4, Vocab), PaddingSide.Right);
        using var cts = new CancellationTokenSource();
        IEnumerable<TokenBatch> Batches()
        {
            yield return batch;
            cts.Cancel();
            yield return batch;
        }
        Assert.ThrowsAny<OperationCanceledException>(() => new DistanceProfiler().Measure(model, Batches(), 2, cancellationToken: cts.Token));
    }

    [Fact]
    public void Non_finite_block_output_names_the_block()
    {
        using var model = Model();
        using var batch = Batch(Sequences(2, 2, 2, 4, Vocab), PaddingSide.Right);
        model.PoisonBlock = 3;
        var ex = Assert.Throws<PruningException>(() => new DistanceProfiler().Measure(model, [batch], 2));
        Assert.Contains("block 3", ex.Message, StringComparison.Ordinal);
    }
}

/// <summary>Records reports synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress(List<PruningProgress> sink) : IProgress<PruningProgress>
{
    public void Report(PruningProgress value) => sink.Add(value);
}
