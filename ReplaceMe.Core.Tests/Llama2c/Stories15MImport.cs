using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Llama2c;

/// <summary>Imports the real stories15M once per test class into a temporary folder.</summary>
public sealed class Stories15MImport : IDisposable
{
    /// <summary>The README's greedy text for "Once upon a time" (the prefix every 40-token greedy run must start with).</summary>
    public const string ReadmePrefix =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky.";

    private readonly TempDir _dir = TestPaths.NewTempDir();

    public Stories15MImport()
    {
        ModelDir = _dir.Combine("stories15M-hf");
        Llama2cImporter.Import(Path.Combine(TestPaths.Stories15MDir, "stories15M.bin"), Path.Combine(TestPaths.Stories15MDir, "tokenizer.model"), ModelDir);
    }

    public string ModelDir { get; }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Greedy decoding written directly on <see cref="DecoderModel.Forward"/> (full recompute, no cache): a reference for generators.</summary>
internal static class ReferenceGreedy
{
    public static DecoderModel LoadModel(string dir)
    {
        var config = ModelConfigJson.Load(Path.Combine(dir, "config.json"));
        var model = DecoderModel.Create(config);
        using var reader = SafetensorsReader.Open(dir);
        using var scope = NewDisposeScope();
        model.LoadStateDict(reader.Names.ToDictionary(n => n, n => reader.Read(n)));
        return model;
    }

    /// <summary>Greedy continuation of each prompt, batched with left padding; returns the new ids per row.</summary>
    public static List<int>[] Generate(DecoderModel model, IReadOnlyList<IReadOnlyList<int>> prompts, int newTokens, int padId)
    {
        var rows = prompts.Select(p => p.ToList()).ToArray();
        var generated = prompts.Select(_ => new List<int>()).ToArray();
        for (int step = 0; step < newTokens; step++)
        {
            using var scope = NewDisposeScope();
            using var batch = TokenBatch.FromSequences(rows, padId, PaddingSide.Left);
            var logits = model.ForwardCore(batch.InputIds, batch.AttentionMask, null, lastPositionOnly: true); // [B, 1, V]
            var next = logits[.., -1, ..].argmax(-1).data<long>().ToArray();
            for (int b = 0; b < rows.Length; b++)
            {
                rows[b].Add((int)next[b]);
                generated[b].Add((int)next[b]);
            }
        }
        return generated;
    }
}
