using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

/// <summary>The snippet of docs/streaming.md, compiled with the variables it assumes as parameters.</summary>
public static class StreamingSnippets
{
    public static void Streamed(string dir, IReadOnlyList<TokenBatch> batches)
    {
        // <snippet:streaming>
        var model = TransformerLoader.Load(dir, residency: ModelResidency.Auto, maxMemoryBytes: 4_000_000_000);
        using var owned = (IDisposable)model;   // a DecoderModel or, here, a StreamedDecoderModel (or StreamedDecoderModel.Open(dir))
        using var result = new ReplaceMePruner().Prune(model, batches, new PruningOptions { BlocksPerCut = 8 });
        result.Save("pruned");                  // from the source files, through PrunedCheckpointWriter
        // </snippet:streaming>
    }
}
