using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>Character tokenizer: 0 = pad, 1 = BOS, 2 = EOS, 3 + c for ASCII character c.</summary>
internal sealed class CharTokenizer : ITextTokenizer
{
    public const int Vocab = 131;
    public int VocabSize => Vocab;
    public int? BosId => 1;
    public int? EosId => 2;
    public int PadId => 0;

    public static int Id(char c) => 3 + c;

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        if (addSpecialTokens) ids.Add(1);
        foreach (var c in text) ids.Add(Id((char)Math.Min((int)c, 127)));
        return ids;
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) =>
        new(ids.Where(i => i >= 3).Select(i => (char)(i - 3)).ToArray());
}

/// <summary>
/// A model whose log-probabilities the test controls: logits at a position are
/// <c>Bigram[token at the position] + Positional[min(position, P - 1)]</c>, where position counts real tokens
/// (so padding on either side changes nothing). Hidden state = [one-hot token | one-hot position].
/// </summary>
internal sealed class TableModel : ITransformerAdapter
{
    private readonly Tensor _weights; // [V + P, V]

    public TableModel(double[,] bigram, double[,] positional)
    {
        Bigram = bigram;
        Positional = positional;
        Vocab = bigram.GetLength(0);
        Positions = positional.GetLength(0);
        var w = new float[(Vocab + Positions) * Vocab];
        for (int i = 0; i < Vocab; i++) for (int j = 0; j < Vocab; j++) w[i * Vocab + j] = (float)bigram[i, j];
        for (int p = 0; p < Positions; p++) for (int j = 0; j < Vocab; j++) w[(Vocab + p) * Vocab + j] = (float)positional[p, j];
        _weights = torch.tensor(w, [Vocab + Positions, Vocab]);
    }

    public double[,] Bigram { get; }
    public double[,] Positional { get; }
    public int Vocab { get; }
    public int Positions { get; }
    public int Forwards { get; private set; }

    public int BlockCount => 0;
    public int HiddenSize => Vocab + Positions;
    public Device Device => CPU;
    public ScalarType DType => ScalarType.Float32;

    /// <summary>Reference log-probability (float64) of <paramref name="next"/> after <paramref name="current"/> at real position <paramref name="position"/>.</summary>
    public double LogProb(int current, int position, int next)
    {
        int p = Math.Min(position, Positions - 1);
        double max = double.NegativeInfinity;
        var logits = new double[Vocab];
        for (int j = 0; j < Vocab; j++) { logits[j] = Bigram[current, j] + Positional[p, j]; max = Math.Max(max, logits[j]); }
        double sum = logits.Sum(l => Math.Exp(l - max));
        return logits[next] - max - Math.Log(sum);
    }

    public DecoderState Embed(Tensor inputIds, Tensor attentionMask)
    {
        Forwards++;
        using var scope = torch.NewDisposeScope();
        var positions = attentionMask.cumsum(1).sub(1).clamp(0, Positions - 1);                      // [B, T]
        var hidden = torch.cat([
            torch.nn.functional.one_hot(inputIds, Vocab).to_type(ScalarType.Float32),             // [B, T, V]
            torch.nn.functional.one_hot(positions, Positions).to_type(ScalarType.Float32)], -1); // [B, T, P]
        return new DecoderState(hidden.MoveToOuterDisposeScope(), attentionMask.clone().MoveToOuterDisposeScope());
    }

    public void RunBlocks(DecoderState state, int startBlock, int endBlock, ActivationCapture? capture = null)
    {
        if (startBlock != 0 || endBlock != 0) throw new ArgumentOutOfRangeException(nameof(endBlock));
    }

    public Tensor Head(DecoderState state) => state.Hidden.matmul(_weights); // [B, T, V]

    public TorchSharp.Modules.Linear GetDownProjection(int block) => throw new NotSupportedException("The table model has no blocks.");

    public void RemoveBlocks(int startBlock, int endBlock) => throw new NotSupportedException("The table model has no blocks.");

    /// <summary>Random bigram and positional tables (seeded), for perplexity tests.</summary>
    public static TableModel Random(int seed, int positions = 8)
    {
        var rng = new Random(seed);
        var bigram = new double[CharTokenizer.Vocab, CharTokenizer.Vocab];
        var positional = new double[positions, CharTokenizer.Vocab];
        for (int i = 0; i < CharTokenizer.Vocab; i++) for (int j = 0; j < CharTokenizer.Vocab; j++) bigram[i, j] = 2 * rng.NextDouble() - 1;
        for (int p = 0; p < positions; p++) for (int j = 0; j < CharTokenizer.Vocab; j++) positional[p, j] = 2 * rng.NextDouble() - 1;
        return new TableModel(bigram, positional);
    }

    /// <summary>
    /// The "q-loving" model: 'q' gets logit 8 after anything, a space gets 9 after 'q'; everything else 0; no
    /// position effect. So the argmax is 'q', except after 'q' where it is ' '.
    /// </summary>
    public static TableModel LovesQ()
    {
        var bigram = new double[CharTokenizer.Vocab, CharTokenizer.Vocab];
        for (int i = 0; i < CharTokenizer.Vocab; i++) bigram[i, CharTokenizer.Id('q')] = 8;
        bigram[CharTokenizer.Id('q'), CharTokenizer.Id(' ')] = 9;
        return new TableModel(bigram, new double[1, CharTokenizer.Vocab]);
    }
}
