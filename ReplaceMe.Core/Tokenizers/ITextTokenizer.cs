namespace ReplaceMe.Core.Tokenizers;

/// <summary>A model's tokenizer: text to ids and back, with its special token ids.</summary>
public interface ITextTokenizer
{
    /// <summary>Number of ids the tokenizer can produce (including added tokens).</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, if the model uses one.</summary>
    int? BosId { get; }

    /// <summary>End-of-sequence id.</summary>
    int? EosId { get; }

    /// <summary>Id used for padding (the pad token, else EOS, else 0); padded positions are masked out anyway.</summary>
    int PadId { get; }

    /// <summary>Encodes text. <paramref name="addSpecialTokens"/> adds what the model expects at the start (BOS) per its tokenizer config.</summary>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true);

    /// <summary>Decodes ids to text; special tokens are dropped when <paramref name="skipSpecialTokens"/> is true.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true);
}
