using ReplaceMe.Core;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Estimation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Surgery;
using ReplaceMe.Core.Tokenizers;

/// <summary>The pipeline snippets of docs/api-guide.md, as compiled methods.</summary>
public static class PipelineSnippets
{
    public static void PlugIn(DecoderModel model, IReadOnlyList<string> documents, ITextTokenizer tokenizer)
    {
        // <snippet:plug-in>
        var options = new PruningOptions
        {
            BlocksPerCut = 2,
            Selector = new SecondHalfSelector(),   // your ILayerSelector
            Estimator = new DiagonalEstimator(),   // your ITransformEstimator
        };
        using var result = new ReplaceMePruner().Prune(model, documents, tokenizer, options);
        Console.WriteLine($"{result.SelectorName} chose {result.Cuts[0]}; {result.EstimatorName} fit on {result.Outcomes[0].Report.Tokens} tokens");
        // </snippet:plug-in>
    }

    public static void ByHand(DecoderModel model)
    {
        // <snippet:by-hand>
        // Remove blocks [3, 5) with plain removal (T = identity), exactly what the pruner's last step does.
        IModelSurgeon surgeon = new ModelSurgeon();
        surgeon.Apply(model, new BlockCut(3, 5), transform: null);
        // </snippet:by-hand>
    }

    public static void Custom(IReadOnlyList<TokenBatch> batches)
    {
        // <snippet:prune-adapter>
        var tiny = new TinyDecoder(vocab: 64, d: 32, heads: 4, ffn: 64, blocks: 6, maxLength: 32);
        var adapter = new TinyDecoderAdapter(tiny);
        var options = new PruningOptions { BlocksPerCut = 1, Estimator = new LeastSquaresEstimator() };
        using var result = new ReplaceMePruner().Prune(adapter, batches, options); // batches: IReadOnlyList<TokenBatch>
        Console.WriteLine($"cut {result.Cuts[0]}, {adapter.BlockCount} blocks left");
        // </snippet:prune-adapter>
    }
}
