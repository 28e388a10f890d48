using System.Text;

namespace ReplaceMe.Core.Tests.Tokenizers;

/// <summary>
/// Independent reference: llama2.c's encoder over <c>tokenizer.bin</c> (run.c's documented rule). Prepend a space, take
/// one piece per UTF-8 character (unknown characters fall back to their bytes, id = byte + 3), then repeatedly merge the
/// adjacent pair whose concatenation is a piece with the highest score.
/// </summary>
internal sealed class Llama2cReferenceTokenizer
{
    private const int ByteTokens = 256, ByteOffset = 3;
    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly Dictionary<string, int> _lookup = new(StringComparer.Ordinal);

    public Llama2cReferenceTokenizer(string tokenizerBinPath, int vocabSize = 32000)
    {
        using var reader = new BinaryReader(File.OpenRead(tokenizerBinPath));
        reader.ReadInt32(); // max_token_length
        _pieces = new string[vocabSize];
        _scores = new float[vocabSize];
        var latin1 = Encoding.Latin1;
        for (int i = 0; i < vocabSize; i++)
        {
            _scores[i] = reader.ReadSingle();
            int len = reader.ReadInt32();
            // Pieces are compared as raw bytes (Latin-1 keeps one char per byte), like run.c's strcmp.
            _pieces[i] = latin1.GetString(reader.ReadBytes(len));
        }
        // Ids 3..258 are the raw byte-fallback tokens; only real pieces take part in lookups (run.c's file has
        // "<0xNN>" strings there, which never collide with text).
        for (int i = ByteOffset + ByteTokens; i < vocabSize; i++) _lookup.TryAdd(_pieces[i], i);
    }

    public List<int> Encode(string text, bool bos)
    {
        var tokens = new List<int>();
        if (bos) tokens.Add(1);
        if (text.Length == 0) return tokens;
        var latin1 = Encoding.Latin1;
        var units = new List<int> { _lookup[" "] };
        var bytes = Encoding.UTF8.GetBytes(text);
        for (int i = 0; i < bytes.Length;)
        {
            int len = (bytes[i] & 0x80) == 0 ? 1 : (bytes[i] & 0xE0) == 0xC0 ? 2 : (bytes[i] & 0xF0) == 0xE0 ? 3 : 4;
            var ch = latin1.GetString(bytes, i, len);
            if (_lookup.TryGetValue(ch, out var id)) units.Add(id);
            else for (int k = 0; k < len; k++) units.Add(bytes[i + k] + ByteOffset);
            i += len;
        }
        while (true)
        {
            float best = float.NegativeInfinity;
            int bestId = -1, bestIdx = -1;
            for (int i = 0; i + 1 < units.Count; i++)
            {
                if (_lookup.TryGetValue(_pieces[units[i]] + _pieces[units[i + 1]], out var id) && _scores[id] > best)
                {
                    best = _scores[id];
                    bestId = id;
                    bestIdx = i;
                }
            }
            if (bestIdx < 0) break;
            units[bestIdx] = bestId;
            units.RemoveAt(bestIdx + 1);
        }
        tokens.AddRange(units);
        return tokens;
    }
}
