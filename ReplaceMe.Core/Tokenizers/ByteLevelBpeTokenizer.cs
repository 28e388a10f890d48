using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;

namespace ReplaceMe.Core.Tokenizers;

/// <summary>What a byte-level BPE tokenizer is made of, as read from <c>tokenizer.json</c> (+ <c>tokenizer_config.json</c>).</summary>
internal sealed record ByteLevelBpeDefinition
{
    /// <summary>The file the definition came from (named in errors).</summary>
    public required string SourcePath { get; init; }
    /// <summary>Byte-level token string → id.</summary>
    public required IReadOnlyDictionary<string, int> Vocab { get; init; }
    /// <summary>Merge rules, highest priority first.</summary>
    public required IReadOnlyList<(string Left, string Right)> Merges { get; init; }
    /// <summary>Tokens matched whole in the raw text.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];
    /// <summary>Text normalization applied before everything else (identity when null).</summary>
    public Func<string, string>? Normalize { get; init; }
    /// <summary>Pre-tokenization splits, applied in order.</summary>
    public IReadOnlyList<PreTokenSplit> Splits { get; init; } = [];
    /// <summary>Prepend a space to each text segment that does not start with one (ByteLevel <c>add_prefix_space</c>).</summary>
    public bool AddPrefixSpace { get; init; }
    /// <summary>A pre-token found whole in the vocabulary is emitted as is (<c>ignore_merges</c>, Llama 3).</summary>
    public bool IgnoreMerges { get; init; }
    /// <summary>Ids put before the text when special tokens are added (BOS).</summary>
    public IReadOnlyList<int> PrefixIds { get; init; } = [];
    /// <summary>Ids put after the text when special tokens are added (EOS, when configured).</summary>
    public IReadOnlyList<int> SuffixIds { get; init; } = [];
    /// <summary>Beginning-of-sequence id.</summary>
    public int? BosId { get; init; }
    /// <summary>End-of-sequence id.</summary>
    public int? EosId { get; init; }
    /// <summary>Padding id named by the config.</summary>
    public int? PadId { get; init; }
    /// <summary>Longest time one regex match may take.</summary>
    public TimeSpan MatchTimeout { get; init; } = PreTokenSplit.DefaultMatchTimeout;
}

/// <summary>
/// Byte-level BPE (GPT-2, Llama 3.x, Qwen2/3, SmolLM): text → added-token split → normalize → pre-token splits →
/// UTF-8 bytes mapped through <see cref="ByteLevelAlphabet"/> → repeated merge of the adjacent pair with the best rank.
/// </summary>
/// <remarks>Written here rather than taken from Microsoft.ML.Tokenizers so that added tokens (lstrip/rstrip/single_word),
/// <c>ignore_merges</c>, pre-tokenizer sequences and the post-processor template follow <c>tokenizer.json</c> exactly.</remarks>
internal sealed class ByteLevelBpeTokenizer : ITextTokenizer
{
    private const int CacheLimit = 200_000;
    private readonly ByteLevelBpeDefinition _def;
    private readonly Dictionary<(string, string), int> _mergeRanks;
    private readonly Dictionary<int, string> _idToToken;
    private readonly Dictionary<int, AddedToken> _addedById;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly Regex? _addedTokenRegex;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public ByteLevelBpeTokenizer(ByteLevelBpeDefinition definition)
    {
        _def = definition;
        for (int b = 0; b < 256; b++)
        {
            var c = ByteLevelAlphabet.Encode((byte)b).ToString();
            if (!definition.Vocab.ContainsKey(c))
                throw new CheckpointFormatException($"{definition.SourcePath}: the byte-level vocabulary lacks the token for byte 0x{b:X2} ('{c}').");
        }
        _mergeRanks = new Dictionary<(string, string), int>(definition.Merges.Count);
        for (int i = 0; i < definition.Merges.Count; i++)
        {
            var (l, r) = definition.Merges[i];
            if (!definition.Vocab.ContainsKey(l) || !definition.Vocab.ContainsKey(r) || !definition.Vocab.ContainsKey(l + r))
                throw new CheckpointFormatException($"{definition.SourcePath}: merge {i} (\"{l} {r}\") uses or makes a token that is not in the vocabulary.");
            _mergeRanks.TryAdd((l, r), i); // a repeated rule keeps its first (best) rank
        }
        _idToToken = new Dictionary<int, string>(definition.Vocab.Count);
        foreach (var (token, id) in definition.Vocab) _idToToken[id] = token;
        _addedById = new Dictionary<int, AddedToken>();
        foreach (var t in definition.AddedTokens)
            if (!_addedById.TryAdd(t.Id, t))
                throw new CheckpointFormatException($"{definition.SourcePath}: added token id {t.Id} is given twice.");
        _addedByContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var t in definition.AddedTokens) _addedByContent.TryAdd(t.Content, t);
        _addedTokenRegex = BuildAddedTokenRegex(definition.AddedTokens, definition.MatchTimeout);
        int maxId = Math.Max(definition.Vocab.Count == 0 ? -1 : definition.Vocab.Values.Max(), definition.AddedTokens.Count == 0 ? -1 : definition.AddedTokens.Max(t => t.Id));
        VocabSize = maxId + 1;
    }

    public int VocabSize { get; }
    public int? BosId => _def.BosId;
    public int? EosId => _def.EosId;
    public int PadId => _def.PadId ?? _def.EosId ?? 0;

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addSpecialTokens) ids.AddRange(_def.PrefixIds);
        var normalized = _def.Normalize is null ? text : _def.Normalize(text);
        int last = 0;
        if (_addedTokenRegex is not null)
        {
            try
            {
                for (var m = _addedTokenRegex.Match(normalized); m.Success; m = m.NextMatch())
                {
                    if (m.Index > last) EncodeOrdinary(normalized[last..m.Index], ids);
                    ids.Add(_addedByContent[m.Groups["tok"].Value].Id);
                    last = m.Index + m.Length;
                }
            }
            catch (RegexMatchTimeoutException ex)
            {
                throw new CheckpointFormatException(
                    $"{_def.SourcePath}: matching the added tokens took longer than {ex.MatchTimeout.TotalSeconds:0.###} s on a {normalized.Length}-character text.", ex);
            }
        }
        if (last < normalized.Length) EncodeOrdinary(normalized[last..], ids);
        if (addSpecialTokens) ids.AddRange(_def.SuffixIds);
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if (_addedById.TryGetValue(id, out var added))
            {
                if (!(added.Special && skipSpecialTokens)) bytes.AddRange(Encoding.UTF8.GetBytes(added.Content));
            }
            else if (_idToToken.TryGetValue(id, out var token))
            {
                if (!ByteLevelAlphabet.TryDecode(token, bytes)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
            }
            else
            {
                throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is not in the vocabulary of {_def.SourcePath} (size {VocabSize}).");
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private void EncodeOrdinary(string segment, List<int> ids)
    {
        if (_def.AddPrefixSpace && !segment.StartsWith(' ')) segment = " " + segment;
        var pieces = new List<string> { segment };
        foreach (var split in _def.Splits)
        {
            var next = new List<string>(pieces.Count * 4);
            foreach (var p in pieces) split.Split(p, next);
            pieces = next;
        }
        foreach (var piece in pieces) ids.AddRange(EncodeWord(ByteLevelAlphabet.Encode(Encoding.UTF8.GetBytes(piece))));
    }

    /// <summary>BPE on one pre-token (already byte-level characters): merge the best-ranked adjacent pair until none applies.</summary>
    private int[] EncodeWord(string word)
    {
        if (_cache.TryGetValue(word, out var cached)) return cached;
        int[] result;
        if (_def.IgnoreMerges && _def.Vocab.TryGetValue(word, out var whole))
        {
            result = [whole];
        }
        else
        {
            var symbols = new List<string>(word.Length);
            foreach (var c in word) symbols.Add(c.ToString());
            while (symbols.Count > 1)
            {
                int bestRank = int.MaxValue;
                (string, string) bestPair = default;
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    if (_mergeRanks.TryGetValue((symbols[i], symbols[i + 1]), out var rank) && rank < bestRank)
                    {
                        bestRank = rank;
                        bestPair = (symbols[i], symbols[i + 1]);
                    }
                }
                if (bestRank == int.MaxValue) break;
                // Merge every occurrence of the best pair, left to right (GPT-2's rule; same result as one at a time).
                var merged = new List<string>(symbols.Count);
                for (int i = 0; i < symbols.Count; i++)
                {
                    if (i + 1 < symbols.Count && symbols[i] == bestPair.Item1 && symbols[i + 1] == bestPair.Item2)
                    {
                        merged.Add(bestPair.Item1 + bestPair.Item2);
                        i++;
                    }
                    else
                    {
                        merged.Add(symbols[i]);
                    }
                }
                symbols = merged;
            }
            result = new int[symbols.Count];
            for (int i = 0; i < symbols.Count; i++) result[i] = _def.Vocab[symbols[i]]; // every symbol is a byte or a merge result, both checked at load
        }
        if (_cache.Count > CacheLimit) _cache.Clear();
        _cache.TryAdd(word, result);
        return result;
    }

    private static Regex? BuildAddedTokenRegex(IReadOnlyList<AddedToken> tokens, TimeSpan timeout)
    {
        if (tokens.Count == 0) return null;
        // Longest first: .NET alternation takes the first alternative that matches at the leftmost position.
        var parts = tokens.Where(t => t.Content.Length > 0).OrderByDescending(t => t.Content.Length).Select(t =>
            (t.LeftStrip ? @"\s*" : "") + (t.SingleWord ? @"(?<!\w)" : "") + "(?<tok>" + Regex.Escape(t.Content) + ")"
            + (t.SingleWord ? @"(?!\w)" : "") + (t.RightStrip ? @"\s*" : ""));
        return new Regex(string.Join("|", parts), RegexOptions.CultureInvariant, timeout);
    }
}
