using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Cli;

/// <summary>Loads a Hugging Face model folder for the verbs that run a model (generate, and later profile/prune/evaluate).</summary>
internal static class CliModels
{
    /// <summary>The model (CPU, float32) and its tokenizer from <paramref name="modelDir"/>; the tokenizer is read first (it is cheap).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ReplaceMe.Core.CheckpointFormatException">config.json, the weights or the tokenizer are missing or malformed.</exception>
    public static (DecoderModel Model, ITextTokenizer Tokenizer) Load(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder not found: {modelDir}");
        var tokenizer = TokenizerLoader.Load(modelDir);
        return (DecoderModel.FromPretrained(modelDir), tokenizer);
    }
}
