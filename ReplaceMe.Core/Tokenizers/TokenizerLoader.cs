namespace ReplaceMe.Core.Tokenizers;

/// <summary>Loads the tokenizer of a Hugging Face model folder.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Loads the folder's tokenizer: <c>tokenizer.json</c> (byte-level BPE: Llama 3.x, Qwen2/3, SmolLM, GPT-2) is
    /// preferred over <c>tokenizer.model</c> (SentencePiece BPE: Llama 2, Mistral v0.x, TinyLlama); a SentencePiece-style
    /// <c>tokenizer.json</c> with a <c>tokenizer.model</c> beside it loads the latter. <c>tokenizer_config.json</c>, when
    /// present, supplies <c>add_bos_token</c>/<c>add_eos_token</c> and the BOS/EOS/pad token names.
    /// </summary>
    /// <param name="modelDir">The model folder.</param>
    /// <exception cref="CheckpointFormatException">Neither file is present, or a file is malformed (the message names it).</exception>
    /// <exception cref="UnsupportedModelException">The tokenizer uses a component that is not implemented.</exception>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static ITextTokenizer Load(string modelDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"Model folder not found: {modelDir}");
        var config = TokenizerConfigJson.Read(modelDir);
        var jsonPath = Path.Combine(modelDir, TokenizerJsonReader.FileName);
        var spPath = Path.Combine(modelDir, SentencePieceTextTokenizer.FileName);
        bool hasJson = File.Exists(jsonPath), hasSp = File.Exists(spPath);
        if (hasJson && (!hasSp || TokenizerJsonReader.IsByteLevel(jsonPath))) return TokenizerJsonReader.Load(jsonPath, config);
        if (hasSp) return SentencePieceTextTokenizer.Load(spPath, config);
        throw new CheckpointFormatException(
            $"{modelDir}: no tokenizer found (looked for {TokenizerJsonReader.FileName} and {SentencePieceTextTokenizer.FileName}).");
    }
}
