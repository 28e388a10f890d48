using Microsoft.Extensions.Logging;
using ReplaceMe.Core;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;

/// <summary>
/// The snippets of docs/pruning.md and docs/tokenizers-and-import.md, compiled with the variables they assume as
/// parameters. When a docs block changes, copy it here verbatim (DocSnippetTests fails until then).
/// </summary>
public static class OtherDocsSnippets
{
    public static void Pruning(IProgress<PruningProgress> progress, ILogger logger, CancellationToken cancellationToken)
    {
        // <snippet:pruning>
        using var model = DecoderModel.FromPretrained("stories15M-hf");
        var tokenizer = TokenizerLoader.Load("stories15M-hf");
        var docs = CalibrationFile.Read("calibration.jsonl", new CalibrationFileOptions(Column: "text", Selection: DocumentSelection.First(1000)));
        var options = new PruningOptions { BlocksPerCut = 2, CalibrationSource = "calibration.jsonl, first 1000" }; // least squares by default
        using var result = new ReplaceMePruner().Prune(model, docs, tokenizer, options, progress, logger, cancellationToken);
        result.Save("stories15M-pruned");            // HF folder + replaceme.json + README.md, written atomically
        // </snippet:pruning>
    }

    public static void Tokenizers(IReadOnlyList<string> texts)
    {
        // <snippet:tokenizers>
        ITextTokenizer tok = TokenizerLoader.Load("path/to/model");      // picks the right file
        IReadOnlyList<int> ids = tok.Encode("Once upon a time");           // [1, 9038, 2501, 263, 931] for Llama 2
        string text = tok.Decode(ids);                                     // "Once upon a time"
        using TokenBatch batch = tok.EncodeBatch(texts, maxLength: 256, side: PaddingSide.Left); // [B, T] ids + mask
        IReadOnlyList<string> back = tok.DecodeBatch(batch.InputIds, batch.AttentionMask);
        // </snippet:tokenizers>
    }

    public static void Import(ILogger logger)
    {
        // <snippet:import-llama2c>
        Llama2cImporter.Import("stories15M.bin", "tokenizer.model", "out/stories15M-hf", overwrite: false, logger);
        // </snippet:import-llama2c>
    }
}
