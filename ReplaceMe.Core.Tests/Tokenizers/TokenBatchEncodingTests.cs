using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

public class TokenBatchEncodingTests
{
    [Fact]
    public void EncodeBatch_truncates_pads_left_and_decodes_back()
    {
        var tok = TokenizerLoader.Load(Stories15MTestModel.FilesDir);
        using var batch = tok.EncodeBatch(["Once upon a time", "Hi", "One two three four five six seven"], maxLength: 5, side: PaddingSide.Left);
        Assert.Equal([3L, 5L], batch.InputIds.shape);
        Assert.Equal([5, tok.Encode("Hi").Count, 5], batch.Lengths);
        var ids = batch.InputIds.data<long>().ToArray();
        var mask = batch.AttentionMask.data<long>().ToArray();
        Assert.Equal([1L, 9038, 2501, 263, 931], ids[..5]);
        int hiLen = batch.Lengths[1];
        Assert.All(ids[5..(10 - hiLen)], id => Assert.Equal(tok.PadId, (int)id));
        Assert.Equal(Enumerable.Repeat(0L, 5 - hiLen).Concat(Enumerable.Repeat(1L, hiLen)), mask[5..10]);
        Assert.Equal(tok.Encode("One two three four five six seven").Take(5).Select(i => (long)i), ids[10..15]);
        var texts = tok.DecodeBatch(batch.InputIds, batch.AttentionMask);
        Assert.Equal(["Once upon a time", "Hi", tok.Decode(tok.Encode("One two three four five six seven").Take(5))], texts);
    }

    [Fact]
    public void EncodeBatch_rejects_a_non_positive_max_length()
    {
        var tok = TokenizerLoader.Load(Stories15MTestModel.FilesDir);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.EncodeBatch(["a"], 0));
    }
}
