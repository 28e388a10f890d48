using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Cli;

/// <summary>Loads a Hugging Face model folder for every verb that runs a model (generate, profile, prune, evaluate).</summary>
internal static class CliModels
{
    /// <summary>
    /// The model (CPU, float32) and its tokenizer from <paramref name="modelDir"/>; the tokenizer is read first (it is
    /// cheap). The model remembers its folder, so a saved pruned model gets the tokenizer files copied.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ReplaceMe.Core.CheckpointFormatException">config.json, the weights or the tokenizer are missing or
    /// malformed, or the tokenizer has more tokens than the model's vocabulary.</exception>
    public static (DecoderModel Model, ITextTokenizer Tokenizer) Load(string modelDir)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder not found: {modelDir}");
        var tokenizer = TokenizerLoader.Load(modelDir);
        var model = DecoderModel.FromPretrained(modelDir);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new ReplaceMe.Core.CheckpointFormatException(
                $"The tokenizer in {modelDir} has {tokenizer.VocabSize} tokens but config.json says vocab_size {model.Config.VocabSize}: " +
                "its ids past the embedding would fail; the tokenizer does not belong to this model.");
        }
        return (model, tokenizer);
    }

    /// <summary>
    /// The model as <paramref name="residency"/> says (in memory or streamed block by block) and its tokenizer, with the
    /// same tokenizer check as <see cref="Load"/>. Prints which mode was chosen and why.
    /// </summary>
    public static (ITransformerAdapter Model, ModelConfig Config, ITextTokenizer Tokenizer) LoadAdapter(
        string modelDir, ModelResidency residency, string reason, TextWriter output)
    {
        if (residency != ModelResidency.Streamed)
        {
            var (decoder, tok) = Load(modelDir);
            return (decoder, decoder.Config, tok);
        }
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder not found: {modelDir}");
        var tokenizer = TokenizerLoader.Load(modelDir);
        var model = StreamedDecoderModel.Open(modelDir);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            model.Dispose();
            throw new ReplaceMe.Core.CheckpointFormatException(
                $"The tokenizer in {modelDir} has {tokenizer.VocabSize} tokens but config.json says vocab_size {model.Config.VocabSize}: " +
                "its ids past the embedding would fail; the tokenizer does not belong to this model.");
        }
        output.WriteLine($"model: streamed block by block, one block resident ({CliSizes.Format(model.BlockBytes)} as float32): {reason}");
        return (model, model.Config, tokenizer);
    }
}
