using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tests.Pruning;
using ReplaceMe.Core.Tests.Surgery;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>
/// Evaluation of a <see cref="StreamedDecoderModel"/> runs block-major with a chunk-major LM head: the same scores as
/// the in-memory model's batch-major evaluation, with each block and each head chunk read once per evaluation.
/// </summary>
public class StreamedEvaluationTests
{
    public StreamedEvaluationTests() => TorchRuntime.EnsureLoaded();

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public void Tiny_bf16_checkpoint_scores_equal_the_in_memory_model_reading_each_block_and_head_chunk_once(PaddingSide side)
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);                     // bf16, 6 blocks, vocab 50, sharded
        var spill = Directory.CreateDirectory(root.Combine("spill")).FullName;
        // 13 rows of 3–24 tokens (3 batches of 5), some scoring only their tail as a strided perplexity window does.
        var sequences = PipelineFixtures.Sequences(13, 24, 50, seed: 11);
        var rows = sequences.Select((s, i) => new ScoreRow(s, i % 3 == 0 ? Math.Max(1, s.Count / 2) : 1)).ToList();
        Assert.Contains(rows, r => r.FirstScored > 1);

        using var memory = DecoderModel.FromPretrained(source);
        var expected = TokenScorer.Score(memory, rows, 0, 5, side, null, CancellationToken.None);

        using var streamed = StreamedDecoderModel.Open(source);
        streamed.HeadChunkBytes = 7 * 32 * 4;                                         // 7 vocab rows per chunk: 8 chunks for 50
        var reports = new List<PruningProgress>();
        // A zero budget spills every hidden state and every batch's final rows: the head re-reads them per chunk.
        var options = new EvaluationOptions { BatchSize = 5, PaddingSide = side, HiddenStateBudgetBytes = 0, SpillDirectory = spill };
        int rowsDone = 0;
        var actual = TokenScorer.Score(streamed, rows, 0, options, "test pass", n => rowsDone = n, new SynchronousProgress(reports.Add), CancellationToken.None);

        Assert.Equal(6, streamed.BlockLoads);                                          // each block once, not once per batch
        Assert.Equal(8, streamed.HeadChunkReads);                                      // each head chunk once
        Assert.Equal(1, streamed.PeakBlocksAllocated);
        Assert.Equal(rows.Count, rowsDone);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(expected[i].Count, actual[i].Count);
            Assert.Equal(expected[i].Greedy, actual[i].Greedy);
            double diff = Math.Abs(actual[i].LogProb - expected[i].LogProb) / Math.Abs(expected[i].LogProb);
            Assert.True(diff <= 1e-6, $"row {i}: log-prob {actual[i].LogProb} streamed vs {expected[i].LogProb} in memory ({diff:E2} relative)");
        }
        Assert.Contains(reports, p => p.Message is { } m && m.StartsWith("block 6/6: test pass, ETA ", StringComparison.Ordinal));
        Assert.Contains(reports, p => p.Message is { } m && m.StartsWith("LM head chunk 8/8: test pass, ETA ", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(spill));                    // the spill file went with the pass

        // Cancelled in the head step, with every state spilled: nothing is left in the spill folder.
        using var cts = new CancellationTokenSource();
        var cancelAt = new SynchronousProgress(p => { if (p.Message?.StartsWith("LM head chunk 2/", StringComparison.Ordinal) == true) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => TokenScorer.Score(streamed, rows, 0, options, "test pass", null, cancelAt, cts.Token));
        Assert.Empty(Directory.EnumerateFileSystemEntries(spill));
    }

    [Fact]
    public void Stories15M_streamed_perplexity_and_cloze_equal_the_in_memory_evaluation()
    {
        var fixture = Stories15MTestModel.Shared;
        var stories = fixture.Stories.Take(10).ToList();
        var options = new EvaluationOptions { MaxLength = 96, Stride = 48, BatchSize = 4 };
        var memory = new ModelEvaluator(fixture.Model, fixture.Tokenizer, options);
        var expected = memory.Perplexity("stories", stories);
        var cloze = ClozeTask.FromDocuments("stories-lastword", stories);
        var expectedCloze = memory.Cloze(cloze);

        using var streamed = StreamedDecoderModel.Open(fixture.ModelDir);
        streamed.HeadChunkBytes = 4096L * 288 * 4;                                     // 4096 rows per chunk: 8 chunks for 32000
        var evaluator = new ModelEvaluator(streamed, fixture.Tokenizer, options);
        var actual = evaluator.Perplexity("stories", stories);
        Assert.Equal(6, streamed.BlockLoads);
        Assert.Equal(8, streamed.HeadChunkReads);
        Assert.Equal(expected.TokensEvaluated, actual.TokensEvaluated);
        Assert.Equal(expected.Windows, actual.Windows);
        double relative = Math.Abs(actual.Perplexity - expected.Perplexity) / expected.Perplexity;
        Assert.True(relative <= 1e-6, $"perplexity {actual.Perplexity} streamed vs {expected.Perplexity} in memory ({relative:E2} relative)");

        var actualCloze = evaluator.Cloze(cloze);
        Assert.Equal(12, streamed.BlockLoads);                                         // one more read of each block for the second evaluation
        Assert.Equal(expectedCloze.Accuracy, actualCloze.Accuracy);
        Assert.True(Math.Abs(actualCloze.Perplexity - expectedCloze.Perplexity) <= 1e-6 * expectedCloze.Perplexity,
            $"cloze perplexity {actualCloze.Perplexity} streamed vs {expectedCloze.Perplexity} in memory");
    }

    private sealed class SynchronousProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }
}
