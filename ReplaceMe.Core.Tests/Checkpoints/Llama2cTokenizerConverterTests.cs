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

    /// <summary>
    /// SHA-256 of the 32,000 piece records of Meta's original Llama-2 <c>tokenizer.model</c> (SHA-256 9e556afd…d347),
    /// concatenated in file order; recorded from that file, which the tests do not ship.
    /// </summary>
    private const string OriginalPieceRecordsSha256 = "0ab14e0e22c40e90456cda01edb1fa0c88505a8884a903a6dc45477730097fdd";

    /// <summary>Ids Microsoft.ML.Tokenizers' LlamaTokenizer gives with the original tokenizer.model (recorded from it).</summary>
    public static TheoryData<string, int[]> OriginalEncodings() => new()
    {
        { "Once upon a time", [1, 9038, 2501, 263, 931] },
        { "  Lily's 3 cats ate 42 fish — café, naïve, 😀 ", [1, 259, 365, 2354, 29915, 29879, 29871, 29941, 274, 1446, 263, 371, 29871, 29946, 29906, 9427, 813, 274, 28059, 29892, 1055, 30085, 345, 29892, 29871, 243, 162, 155, 131, 29871] },
        { "\n\tTabs\nand newlines\n", [1, 29871, 13, 12, 29911, 6897, 13, 392, 716, 9012, 13] },
    };

    [Fact]
    public void Pieces_are_byte_identical_to_the_original_tokenizer_model()
    {
        using var dir = TestPaths.NewTempDir();
        var converted = dir.Combine("tokenizer.model");
        Llama2cTokenizerConverter.Convert(Stories15MTestModel.Files.TokenizerBin!, converted);
        var mine = PieceRecords(File.ReadAllBytes(converted));
        Assert.Equal(32000, mine.Count);
        var sha = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(mine.SelectMany(r => r).ToArray())).ToLowerInvariant();
        Assert.Equal(OriginalPieceRecordsSha256, sha);
    }

    [Theory]
    [MemberData(nameof(OriginalEncodings))]
    public void Encodings_agree_with_the_original_tokenizer_model(string text, int[] expected)
    {
        using var dir = TestPaths.NewTempDir();
        var converted = dir.Combine("tokenizer.model");
        Llama2cTokenizerConverter.Convert(Stories15MTestModel.Files.TokenizerBin!, converted);
        using var stream = File.OpenRead(converted);
        Assert.Equal(expected, LlamaTokenizer.Create(stream).EncodeToIds(text));
    }

    [Fact]
    public void Truncated_or_wrong_files_are_clear_errors()
    {
        using var dir = TestPaths.NewTempDir();
        var bin = File.ReadAllBytes(Stories15MTestModel.Files.TokenizerBin!);
        var truncated = dir.Combine("truncated.bin");
        File.WriteAllBytes(truncated, bin[..(bin.Length / 2)]);
        var ex = Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizerConverter.Convert(truncated, dir.Combine("t.model")));
        Assert.Contains("truncated", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.Combine("t.model")));

        var wrongSize = Assert.Throws<CheckpointFormatException>(() =>
            Llama2cTokenizerConverter.Convert(Stories15MTestModel.Files.TokenizerBin!, dir.Combine("u.model"), vocabSize: 31000));
        Assert.Contains("trailing bytes", wrongSize.Message, StringComparison.Ordinal);

        Assert.Throws<CheckpointFormatException>(() => Llama2cTokenizerConverter.Convert(dir.Combine("missing.bin"), dir.Combine("v.model")));
    }
}
