using Microsoft.ML.Tokenizers;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class Llama2cTokenizerConverterTests
{
    /// <summary>The byte ranges of the top-level field-1 (piece) records of a SentencePiece model file.</summary>
    private static List<byte[]> PieceRecords(byte[] model)
    {
        var records = new List<byte[]>();
        int i = 0;
        while (i < model.Length)
        {
            int start = i;
            ulong key = ReadVarint(model, ref i);
            int wire = (int)(key & 7);
            if (wire == 2) { int len = (int)ReadVarint(model, ref i); i += len; }
            else if (wire == 0) ReadVarint(model, ref i);
            else if (wire == 5) i += 4;
            else i += 8;
            if (key >> 3 == 1) records.Add(model[start..i]);
        }
        return records;
    }

    private static ulong ReadVarint(byte[] b, ref int i)
    {
        ulong r = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte c = b[i++];
            r |= (ulong)(c & 0x7f) << shift;
            if (c < 0x80) return r;
        }
    }

    [Fact]
    public void Pieces_are_byte_identical_to_the_original_tokenizer_model_and_encodings_agree()
    {
        using var dir = TestPaths.NewTempDir();
        var converted = dir.Combine("tokenizer.model");
        Llama2cTokenizerConverter.Convert(Path.Combine(TestPaths.Stories15MDir, "tokenizer.bin"), converted);

        var original = File.ReadAllBytes(Path.Combine(TestPaths.Stories15MDir, "tokenizer.model"));
        var mine = PieceRecords(File.ReadAllBytes(converted));
        var theirs = PieceRecords(original);
        Assert.Equal(32000, mine.Count);
        Assert.Equal(theirs.Count, mine.Count);
        for (int id = 0; id < mine.Count; id++) Assert.True(theirs[id].AsSpan().SequenceEqual(mine[id]), $"piece {id} differs");

        using var a = File.OpenRead(converted);
        using var b = File.OpenRead(Path.Combine(TestPaths.Stories15MDir, "tokenizer.model"));
        var fromConverted = LlamaTokenizer.Create(a);
        var fromOriginal = LlamaTokenizer.Create(b);
        foreach (var text in new[] { "Once upon a time", "  Lily's 3 cats ate 42 fish — café, naïve, 😀 ", "\n\tTabs\nand newlines\n" })
            Assert.Equal(fromOriginal.EncodeToIds(text), fromConverted.EncodeToIds(text));
    }

    [Fact]
    public void Truncated_or_wrong_files_are_clear_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var bin = File.ReadAllBytes(Path.Combine(TestPaths.Stories15MDir, "tokenizer.bin"));
        var truncated = dir.Combine("truncated.bin");
        File.WriteAllBytes(truncated, bin[..(bin.Length / 2)]);
        var ex = Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizerConverter.Convert(truncated, dir.Combine("t.model")));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.Combine("t.model")));

        var wrongSize = Assert.Throws<CheckpointFormatException>(() =>
            Llama2cTokenizerConverter.Convert(Path.Combine(TestPaths.Stories15MDir, "tokenizer.bin"), dir.Combine("u.model"), vocabSize: 31000));
        Assert.Contains("trailing bytes", wrongSize.Message, StringComparison.Ordinal);

        Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizerConverter.Convert(dir.Combine("missing.bin"), dir.Combine("v.model")));
    }
}
