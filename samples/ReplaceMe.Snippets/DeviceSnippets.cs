using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Tokenizers;
using TorchSharp;

/// <summary>The device snippets of docs/getting-started.md.</summary>
public static class DeviceSnippets
{
    public static void OnGpu(string modelDir, IReadOnlyList<string> stories, IReadOnlyList<string> heldOut)
    {
        // <snippet:gpu>
        // With TorchSharp-cuda-linux or TorchSharp-cuda-windows referenced instead of TorchSharp-cpu:
        var device = torch.cuda.is_available() ? torch.CUDA : torch.CPU;
        var tokenizer = TokenizerLoader.Load(modelDir);
        using var model = DecoderModel.FromPretrained(modelDir, new ModelLoadOptions(device, torch.ScalarType.BFloat16));
        var options = new PruningOptions
        {
            BlocksPerCut = 8,
            EstimationDevice = device, // where T is solved (defaults to the model's device)
        };
        using var result = new ReplaceMePruner().Prune(model, stories, tokenizer, options);
        var ppl = new ModelEvaluator(model, tokenizer).Perplexity("held-out", heldOut); // runs on the model's device
        // </snippet:gpu>
        Console.WriteLine(ppl.Perplexity);
    }

    public static void FromFile()
    {
        // <snippet:calibration-file>
        // Plain text: documents separated by blank lines; .jsonl and .parquet: the "text" column.
        IReadOnlyList<string> documents = CalibrationFile.Read("calibration.txt");
        // </snippet:calibration-file>
        Console.WriteLine(documents.Count);
    }
}
