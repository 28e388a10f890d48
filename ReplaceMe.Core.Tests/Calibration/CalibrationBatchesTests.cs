using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Calibration;

public class CalibrationBatchesTests
{
    public CalibrationBatchesTests() => TorchRuntime.EnsureLoaded();

    private static readonly string[] Docs = ["abc", "hello world", "x", "a much longer document here", "zz"];

    [Fact]
    public void Tokenize_batches_in_order_truncates_and_masks()
    {
        var batches = CalibrationBatches.Tokenize(Docs, new CharTokenizer(), batchSize: 2, maxLength: 8);
        Assert.Equal(3, batches.Count);
        Assert.Equal([4, 8], batches[0].Lengths);     // BOS + 3, BOS + 11 truncated to 8
        Assert.Equal([2, 8], batches[1].Lengths);
        Assert.Equal([3], batches[2].Lengths);
        var mask = batches[0].AttentionMask.data<long>().ToArray();
        Assert.Equal([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], mask);
        var ids = batches[0].InputIds.data<long>().ToArray();
        Assert.Equal(1, ids[0]);
        Assert.Equal(2 + 'a' % 100, ids[1]);
        foreach (var b in batches) b.Dispose();
    }

    [Fact]
    public void Fingerprint_ignores_padding_and_batching_but_not_content()
    {
        var tok = new CharTokenizer();
        string F(IReadOnlyList<string> docs, int bs, PaddingSide side)
        {
            var batches = CalibrationBatches.Tokenize(docs, tok, bs, 64, side);
            try { return CalibrationBatches.Fingerprint(batches); }
            finally { foreach (var b in batches) b.Dispose(); }
        }
        var reference = F(Docs, 2, PaddingSide.Right);
        Assert.Equal(64, reference.Length);
        Assert.Equal(reference, F(Docs, 1, PaddingSide.Right));
        Assert.Equal(reference, F(Docs, 3, PaddingSide.Left));
        Assert.NotEqual(reference, F(["abc", "hello world", "x", "a much longer document herf", "zz"], 2, PaddingSide.Right));
        Assert.NotEqual(reference, F(["abchello world", "x", "a much longer document here", "zz"], 2, PaddingSide.Right));
    }

    [Fact]
    public void Split_holds_out_the_last_batches_and_keeps_one_for_fitting()
    {
        var batches = CalibrationBatches.Tokenize(Docs, new CharTokenizer(), 1, 16);
        var (fit, held) = CalibrationBatches.Split(batches, 0.3);
        Assert.Equal(3, fit.Count);
        Assert.Equal(2, held.Count);
        Assert.Same(batches[3], held[0]);
        Assert.Single(CalibrationBatches.Split(batches.Take(1).ToList(), 0.5).Fit);
        Assert.Throws<ArgumentOutOfRangeException>(() => CalibrationBatches.Split(batches, 1.0));
        foreach (var b in batches) b.Dispose();
    }

    [Fact]
    public void Disposing_the_batch_list_releases_every_batch()
    {
        var batches = CalibrationBatches.Tokenize(["ab", "cde", "f", "ghij", "k"], new CharTokenizer(), batchSize: 2, maxLength: 8);
        var held = batches.ToList();
        Assert.Equal(3, held.Count);
        Assert.All(held, b => Assert.False(b.InputIds.IsInvalid));
        batches.Dispose();
        Assert.All(held, b => Assert.True(b.InputIds.IsInvalid && b.AttentionMask.IsInvalid));
        Assert.Empty(batches);
    }

    [Fact]
    public void Documents_without_tokens_are_an_error()
    {
        var tok = new NoBosTokenizer();
        Assert.Throws<PruningException>(() => CalibrationBatches.Tokenize(["", ""], tok, 2, 8));
    }

    private sealed class NoBosTokenizer : ITextTokenizer
    {
        public int VocabSize => 10;
        public int? BosId => null;
        public int? EosId => null;
        public int PadId => 0;
        public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) => text.Select(c => 1 + c % 9).ToList();
        public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => "";
    }
}
