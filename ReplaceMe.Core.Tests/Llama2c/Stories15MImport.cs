using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Llama2c;

/// <summary>Imports the real stories15M once per test class into a temporary folder and loads it.</summary>
public sealed class Stories15MImport : IDisposable
{
    /// <summary>The README's greedy text for "Once upon a time" (the prefix every 40-token greedy run must start with).</summary>
    public const string ReadmePrefix =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky.";

    /// <summary>The full greedy 40-token continuation of "Once upon a time" (recorded from the imported model; starts with the README text).</summary>
    public const string Greedy40 = ReadmePrefix + " It was the sun!";

    private readonly TempDir _dir = TestPaths.NewTempDir();

    public Stories15MImport()
    {
        ModelDir = _dir.Combine("stories15M-hf");
        Llama2cImporter.Import(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin"), Path.Combine(TestPaths.Stories15MDir, "tokenizer.model"), ModelDir);
        Tokenizer = TokenizerLoader.Load(ModelDir);
        Model = DecoderModel.FromPretrained(ModelDir);
    }

    public string ModelDir { get; }

    public ITextTokenizer Tokenizer { get; }

    public DecoderModel Model { get; }

    public void Dispose()
    {
        Model.Dispose();
        _dir.Dispose();
    }
}
