using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Calibration;

/// <summary>Test tokenizer: BOS = 1, pad = 0, each char c → 2 + (c mod 100).</summary>
internal sealed class CharTokenizer : ITextTokenizer
{
    public int VocabSize => 102;
    public int? BosId => 1;
    public int? EosId => null;
    public int PadId => 0;

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        if (addSpecialTokens) ids.Add(1);
        foreach (var c in text) ids.Add(2 + c % 100);
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) =>
        new(ids.Where(i => i >= 2).Select(i => (char)(i - 2 + 32)).ToArray());
}
