using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Cli;

/// <summary>Loads a Hugging Face model folder for the verbs that run a model (generate, and later profile/prune/evaluate).</summary>
internal static class CliModels
{
    /// <summary>The model (CPU, float32) and its tokenizer from <paramref name="modelDir"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ReplaceMe.Core.CheckpointFormatException">config.json, the weights or the tokenizer are missing or malformed.</exception>
    public static (DecoderModel Model, ITextTokenizer Tokenizer) Load(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder not found: {modelDir}");
        var tokenizer = TokenizerLoader.Load(modelDir);
        var config = ModelConfigJson.Load(Path.Combine(modelDir, "config.json"));
        var model = DecoderModel.Create(config, seed: 0);
        try
        {
            using var reader = SafetensorsReader.Open(modelDir);
            using var scope = NewDisposeScope();
            model.LoadStateDict(reader.Names.ToDictionary(n => n, n => reader.Read(n)));
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return (model, tokenizer);
    }
}
