using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Scoring evaluation rows on a <see cref="StreamedDecoderModel"/> of a random-weight bf16 checkpoint of Llama-3.2-1B's
/// shape (the generator of <see cref="StreamingRewriteBenchmark"/>), batch-major (every batch reads every block and the
/// whole LM head) against block-major with the chunk-major head (each read once). 8 batches of one 128-token row of
/// random ids; reports bytes read from the checkpoint, block and head-chunk reads, wall time of each, and the largest
/// relative difference of a row's log-probability. <c>--quick</c> uses 4 blocks and a 32000-token vocabulary.
/// </summary>
internal sealed class StreamEvaluateBenchmark : IBenchmark
{
    private const int Batches = 8, Tokens = 128;

    public string Name => "stream-evaluate";

    public string Description => "streamed evaluation of a Llama-3.2-1B-shaped bf16 checkpoint: batch-major vs block-major with a chunk-major head (bytes read, time)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        var model = LlamaShape.For(null, settings.Quick);    // Llama-3.2-1B (or the 4-block quick shape)
        int vocab = model.Vocab;
        var root = Path.Combine(settings.WorkDir ?? Path.GetTempPath(), "replaceme-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            long sourceBytes = model.WriteCheckpoint(Path.Combine(root, "source"));
            var rng = new Random(5);
            var rows = Enumerable.Range(0, Batches)
                .Select(_ => new ScoreRow(Enumerable.Range(0, Tokens).Select(_ => rng.Next(1, vocab)).ToArray(), 1)).ToList();
            var options = new EvaluationOptions { BatchSize = 1, MaxLength = Tokens };

            using var batchMajor = StreamedDecoderModel.Open(Path.Combine(root, "source"));
            var clock = Stopwatch.StartNew();
            var a = TokenScorer.Score(batchMajor, rows, 0, 1, PaddingSide.Right, null, CancellationToken.None);
            double batchSeconds = clock.Elapsed.TotalSeconds;

            using var blockMajor = StreamedDecoderModel.Open(Path.Combine(root, "source"));
            clock.Restart();
            var b = TokenScorer.Score(blockMajor, rows, 0, options, "bench", null, null, CancellationToken.None);
            double blockSeconds = clock.Elapsed.TotalSeconds;

            double worst = Enumerable.Range(0, rows.Count).Max(i => Math.Abs(a[i].LogProb - b[i].LogProb) / Math.Abs(a[i].LogProb));
            var inv = CultureInfo.InvariantCulture;
            string shape = string.Create(inv, $"{model.Layers} blocks, d 2048, vocab {vocab}, tied, bf16 {sourceBytes / 1e9:F2} GB; {Batches} batches x 1 x {Tokens} tokens, float32 compute");
            return
            [
                new Measurement(Name, "batch-major GB read", batchMajor.BytesRead / 1e9,
                    string.Create(inv, $"{batchMajor.BlockLoads} block reads, {batchMajor.HeadChunkReads} head-chunk reads, {batchSeconds:F1} s; {shape}")),
                new Measurement(Name, "block-major GB read", blockMajor.BytesRead / 1e9,
                    string.Create(inv, $"{blockMajor.BlockLoads} block reads, {blockMajor.HeadChunkReads} head-chunk reads, {blockSeconds:F1} s")),
                new Measurement(Name, "max relative log-prob difference x 1e9", worst * 1e9, string.Create(inv, $"per row, block-major vs batch-major ({worst:E2})")),
            ];
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
