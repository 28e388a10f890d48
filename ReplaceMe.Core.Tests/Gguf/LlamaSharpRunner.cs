using LLama;
using LLama.Common;
using LLama.Native;

namespace ReplaceMe.Core.Tests.Gguf;

/// <summary>
/// A GGUF file run by llama.cpp through LLamaSharp on the CPU backend (one thread, small context): tokenization,
/// per-position logits of a whole sequence, and greedy decoding.
/// </summary>
internal sealed class LlamaSharpRunner : IDisposable
{
    private static int _logsSilenced;
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;

    public LlamaSharpRunner(string ggufPath, uint contextSize = 128)
    {
        if (Interlocked.Exchange(ref _logsSilenced, 1) == 0) NativeLogConfig.llama_log_set((_, _) => { });
        var parameters = new ModelParams(ggufPath) { ContextSize = contextSize, GpuLayerCount = 0, Threads = 1, BatchThreads = 1, BatchSize = contextSize, UBatchSize = contextSize,
            // A float32 KV cache (llama.cpp's default is float16) so that an F32 file is compared at full precision.
            TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32, FlashAttention = false };
        _weights = LLamaWeights.LoadFromFile(parameters);
        _context = _weights.CreateContext(parameters);
    }

    public int VocabCount => _weights.Vocab.Count;

    public int[] Tokenize(string text) => [.. _context.Tokenize(text, addBos: true, special: false).Select(t => (int)t)];

    /// <summary>Natural-log probabilities of each next token of <paramref name="ids"/> (one per position after the first), in float64.</summary>
    public double[] NextTokenLogProbs(IReadOnlyList<int> ids)
    {
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Count; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, logits: true);
        Check(_context.Decode(batch));
        var result = new double[ids.Count - 1];
        for (int i = 0; i + 1 < ids.Count; i++)
        {
            var logits = _context.NativeHandle.GetLogitsIth(i);
            double max = double.NegativeInfinity;
            foreach (var l in logits) max = Math.Max(max, l);
            double sum = 0;
            foreach (var l in logits) sum += Math.Exp(l - max);
            result[i] = logits[ids[i + 1]] - max - Math.Log(sum);
        }
        return result;
    }

    /// <summary>Greedy continuation (argmax, lowest id on ties) of <paramref name="prompt"/>: the new ids, stopping after <paramref name="eos"/>.</summary>
    public List<int> Greedy(IReadOnlyList<int> prompt, int maxNewTokens, int? eos)
    {
        _context.NativeHandle.MemoryClear(true);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Count; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, logits: i == prompt.Count - 1);
        Check(_context.Decode(batch));
        var output = new List<int>();
        int pos = prompt.Count;
        int logitIndex = prompt.Count - 1;
        while (output.Count < maxNewTokens)
        {
            var logits = _context.NativeHandle.GetLogitsIth(logitIndex);
            int best = 0;
            for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
            output.Add(best);
            if (best == eos) break;
            batch.Clear();
            batch.Add(best, pos++, LLamaSeqId.Zero, logits: true);
            Check(_context.Decode(batch));
            logitIndex = 0;
        }
        return output;
    }

    private static void Check(DecodeResult result)
    {
        if (result != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {result}.");
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
