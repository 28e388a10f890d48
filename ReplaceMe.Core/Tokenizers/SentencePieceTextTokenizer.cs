using Microsoft.ML.Tokenizers;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>
/// A SentencePiece BPE <c>tokenizer.model</c> (Llama 2, Mistral v0.x, TinyLlama) through Microsoft.ML.Tokenizers'
/// <see cref="LlamaTokenizer"/>: dummy-prefix space, score-ordered merges, byte fallback.
/// </summary>
internal sealed class SentencePieceTextTokenizer : ITextTokenizer
{
    /// <summary>The file name of the SentencePiece model.</summary>
    public const string FileName = "tokenizer.model";

    private readonly LlamaTokenizer _tokenizer;
    private readonly bool _addBos;
    private readonly bool _addEos;
    private readonly int? _padId;

    private SentencePieceTextTokenizer(LlamaTokenizer tokenizer, bool addBos, bool addEos, int? padId, IEnumerable<int> specialIds)
    {
        _tokenizer = tokenizer;
        _addBos = addBos;
        _addEos = addEos;
        _padId = padId;
        // Special tokens from tokenizer_config.json may lie past the model's pieces (a <pad> appended at 32000).
        VocabSize = tokenizer.Vocabulary.Values.Concat(specialIds).DefaultIfEmpty(-1).Max() + 1;
    }

    /// <summary>Loads <paramref name="modelPath"/>; BOS/EOS flags and added special tokens from <paramref name="config"/>
    /// (defaults: add BOS, not EOS, as Llama 2 does).</summary>
    /// <exception cref="CheckpointFormatException">The file is not a regular file of at most
    /// <see cref="InputFile.TokenizerModelMaxBytes"/>, not a SentencePiece BPE model, or tokenizer_config.json gives an
    /// added token an id out of range.</exception>
    public static SentencePieceTextTokenizer Load(string modelPath, TokenizerConfigJson config)
    {
        bool addBos = config.AddBosToken ?? true, addEos = config.AddEosToken ?? false;
        // Special tokens are matched whole in the input text, as Hugging Face does with added_tokens_decoder.
        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (id, (content, isSpecial)) in config.AddedTokens)
            if (isSpecial && !special.TryAdd(content, id))
                throw new CheckpointFormatException($"{config.SourcePath}: added token '{content}' appears with two ids ({special[content]} and {id}).");
        LlamaTokenizer tokenizer;
        using var stream = InputFile.OpenRegular(modelPath, InputFile.TokenizerModelMaxBytes, "SentencePiece model");
        try
        {
            tokenizer = LlamaTokenizer.Create(stream, addBos, addEos, special.Count > 0 ? special : null);
        }
        catch (Exception ex) // protobuf and ML.Tokenizers report a bad model with many exception types
        {
            throw new CheckpointFormatException($"{modelPath}: not a readable SentencePiece BPE model ({ex.Message})", ex);
        }
        config.CheckAddedTokenIds(tokenizer.Vocabulary.Count);
        int? padId = config.PadToken is { } pad && tokenizer.Vocabulary.TryGetValue(pad, out var p) ? p : null;
        return new SentencePieceTextTokenizer(tokenizer, addBos, addEos, padId, special.Values);
    }

    public int VocabSize { get; }
    public int? BosId => _tokenizer.BeginningOfSentenceId;
    public int? EosId => _tokenizer.EndOfSentenceId;
    public int PadId => _padId ?? EosId ?? 0;

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _tokenizer.EncodeToIds(text, addSpecialTokens && _addBos, addSpecialTokens && _addEos);
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyCollection<int> ?? ids.ToList();
        foreach (var id in list)
            if (id < 0 || id >= VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is outside the vocabulary (size {VocabSize}).");
        return _tokenizer.Decode(list, considerSpecialTokens: !skipSpecialTokens);
    }
}
