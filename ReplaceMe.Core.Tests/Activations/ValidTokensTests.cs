using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Activations;

public class ValidTokensTests
{
    public ValidTokensTests() => TorchRuntime.EnsureLoaded();

    /// <summary>States [B, T, 2] whose row (b, t) holds (b, t), so gathered rows say where they came from.</summary>
    private static Tensor Tagged(int batch, int width)
    {
        var data = new float[batch * width * 2];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < width; t++) { data[(b * width + t) * 2] = b; data[(b * width + t) * 2 + 1] = t; }
        return tensor(data, [batch, width, 2]);
    }

    private static (int B, int T)[] Positions(Tensor rows)
    {
        var v = rows.data<float>().ToArray();
        return [.. Enumerable.Range(0, (int)rows.shape[0]).Select(r => ((int)v[r * 2], (int)v[r * 2 + 1]))];
    }

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public void Gather_picks_exactly_the_real_tokens_in_batch_then_position_order(PaddingSide side)
    {
        using var batch = TokenBatch.FromSequences([[5, 6, 7], [8], [9, 10]], padId: 0, side);
        using var states = Tagged(3, 3);
        using var rows = ValidTokens.Gather(states, batch.AttentionMask);

        (int, int)[] expected = side == PaddingSide.Right
            ? [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1)]
            : [(0, 0), (0, 1), (0, 2), (1, 2), (2, 1), (2, 2)];
        Assert.Equal(expected, Positions(rows));
    }

    [Fact]
    public void Last_token_index_handles_both_padding_sides()
    {
        using var right = TokenBatch.FromSequences([[5, 6, 7], [8], [9, 10]], padId: 0, PaddingSide.Right);
        using var left = TokenBatch.FromSequences([[5, 6, 7], [8], [9, 10]], padId: 0, PaddingSide.Left);
        Assert.Equal(new long[] { 2, 0, 1 }, ValidTokens.LastTokenIndex(right.AttentionMask).data<long>().ToArray());
        Assert.Equal(new long[] { 2, 2, 2 }, ValidTokens.LastTokenIndex(left.AttentionMask).data<long>().ToArray());

        using var states = Tagged(3, 3);
        using var last = ValidTokens.GatherLast(states, right.AttentionMask);
        Assert.Equal([(0, 2), (1, 0), (2, 1)], Positions(last));
    }

    [Fact]
    public void Bad_masks_are_rejected()
    {
        using var empty = tensor(new long[] { 1, 1, 0, 0 }, [2, 2]);
        Assert.Throws<ArgumentException>(() => ValidTokens.LastTokenIndex(empty));
        using var states = Tagged(2, 3);
        Assert.Throws<ArgumentException>(() => ValidTokens.Gather(states, empty));
    }

    [Fact]
    public void Normal_equations_are_the_same_for_left_right_and_unbatched_padding()
    {
        // Per-sequence token states (position-dependent) exist independently of the padding layout.
        int[] lengths = [5, 2, 4];
        const int d = 3;
        var rng = new Random(3);
        var tokens = lengths.Select(l => Enumerable.Range(0, l * d).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();

        double[] Sums(PaddingSide side, IReadOnlyList<int> which)
        {
            using var sums = new NormalEquations(d, CPU);
            var seqs = which.Select(i => (IReadOnlyList<int>)Enumerable.Repeat(1, lengths[i]).ToArray()).ToArray();
            using var batch = TokenBatch.FromSequences(seqs, padId: 0, side);
            int width = (int)batch.AttentionMask.shape[1];
            var data = new float[which.Count * width * d];
            for (int b = 0; b < which.Count; b++)
            {
                int offset = side == PaddingSide.Left ? width - lengths[which[b]] : 0;
                Array.Fill(data, 1e6f, b * width * d, width * d); // garbage in pad positions
                Array.Copy(tokens[which[b]], 0, data, (b * width + offset) * d, lengths[which[b]] * d);
            }
            using var states = tensor(data, [which.Count, width, d]);
            using var rows = ValidTokens.Gather(states, batch.AttentionMask);
            sums.Add(rows, rows * 2);
            return [.. sums.Gram.data<double>().ToArray(), .. sums.Cross.data<double>().ToArray(), sums.Rows];
        }

        var rightPadded = Sums(PaddingSide.Right, [0, 1, 2]);
        var leftPadded = Sums(PaddingSide.Left, [0, 1, 2]);
        var oneByOne = new double[rightPadded.Length];
        for (int i = 0; i < lengths.Length; i++)
        {
            var s = Sums(PaddingSide.Right, [i]);
            for (int k = 0; k < s.Length; k++) oneByOne[k] += s[k];
        }
        Assert.Equal(11, rightPadded[^1]);
        for (int k = 0; k < rightPadded.Length; k++)
        {
            Assert.Equal(rightPadded[k], leftPadded[k], 9);
            Assert.Equal(rightPadded[k], oneByOne[k], 9);
        }
    }

    [Fact]
    public void Last_tokens_and_next_token_pairs_follow_the_mask_by_hand()
    {
        // Row 0 right-padded (positions 0, 1), row 1 left-padded (1, 2), row 2 empty; T = 3, so flat = 3·b + t.
        using var mask = tensor(new long[] { 1, 1, 0, 0, 1, 1, 0, 0, 0 }, [3, 3]);
        using var last = ValidTokens.LastFlatIndex(mask);
        Assert.Equal([1L, 5L], last.data<long>().ToArray());               // the empty row is skipped
        var (predictors, targets) = ValidTokens.NextTokenPairs(mask);
        using (predictors)
        using (targets)
        {
            Assert.Equal([0L, 4L], predictors.data<long>().ToArray());     // (0 → 1) in row 0, (1 → 2) in row 1
            Assert.Equal([1L, 5L], targets.data<long>().ToArray());
        }
        using var states = arange(9 * 2, ScalarType.Float32).reshape(3, 3, 2);
        using var rows = ValidTokens.Rows(states, last);
        Assert.Equal([2f, 3f, 10f, 11f], rows.data<float>().ToArray());
    }
}
