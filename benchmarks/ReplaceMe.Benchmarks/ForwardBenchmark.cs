using System.Globalization;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Forward throughput of a 125M-parameter-shaped Llama model (d 768, 12 blocks, 12 heads, d_ff 3072, vocab 32000, tied
/// head) with random weights in float32 on the CPU, batch 4 × 256 tokens.
/// </summary>
/// <remarks>
/// Achieved FLOP/s counts 2 · (matmul parameters) · tokens for the projections and the LM head, plus the attention
/// products QKᵀ and AV (4 · B · T² · d per block, the full T×T matrix as it is computed).
/// </remarks>
internal sealed class ForwardBenchmark : IBenchmark
{
    public string Name => "forward";

    public string Description => "DecoderModel forward tokens/s and GFLOP/s, 125M-shaped Llama, float32, batch 4 × 256";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        int layers = settings.Quick ? 2 : 12, batch = 4, seq = settings.Quick ? 64 : 256;
        const int D = 768, Heads = 12, Ff = 3072, Vocab = 32000;
        var config = new ModelConfig
        {
            ModelType = "llama", HiddenSize = D, IntermediateSize = Ff, NumHiddenLayers = layers, NumAttentionHeads = Heads,
            NumKeyValueHeads = Heads, HeadDim = D / Heads, VocabSize = Vocab, TieWordEmbeddings = true,
            Raw = new JsonObject { ["model_type"] = "llama" },
        };
        using var model = DecoderModel.Create(config, new ModelLoadOptions(CPU, ScalarType.Float32), seed: 1);
        using var scope = NewDisposeScope();
        var ids = randint(0, Vocab, [batch, seq], ScalarType.Int64);
        var mask = ones([batch, seq], ScalarType.Int64);
        int reps = settings.Quick ? 1 : 3;
        double seconds = Timing.MedianSeconds(() => { using var logits = model.Forward(ids, mask); }, warmup: 1, repetitions: reps);

        long tokens = (long)batch * seq;
        long perBlock = 4L * D * D + 3L * D * Ff; // q, k, v, o + gate, up, down (no GQA here)
        long matmulParams = layers * perBlock + (long)Vocab * D;
        double flops = 2.0 * matmulParams * tokens + layers * 4.0 * batch * seq * (double)seq * D;
        long totalParams = model.parameters().Sum(p => p.numel());
        string detail = string.Create(CultureInfo.InvariantCulture,
            $"{totalParams / 1e6:F1}M params ({matmulParams / 1e6:F1}M in matmuls), {layers} blocks, batch {batch} × {seq}, median of {reps}, {seconds:F2} s per forward, {flops / 1e9:F0} GFLOP per forward");
        return
        [
            new Measurement(Name, "tokens/s", tokens / seconds, detail),
            new Measurement(Name, "GFLOP/s", flops / seconds / 1e9, detail),
        ];
    }
}
