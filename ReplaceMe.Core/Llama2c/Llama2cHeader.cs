namespace ReplaceMe.Core.Llama2c;

/// <summary>
/// The 7-int32 header of a llama2.c legacy <c>.bin</c> checkpoint and the file layout it implies: fp32 tensors
/// <c>tok_embeddings[V,d]</c>, per-layer stacks, <c>norm[d]</c>, two RoPE tables <c>[seq_len, hs/2]</c>, and a separate
/// classifier <c>[V,d]</c> only when the header's vocab size is negative (unshared).
/// </summary>
internal sealed record Llama2cHeader(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    /// <summary>Header size in bytes.</summary>
    public const int Bytes = 7 * sizeof(int);

    /// <summary>Per-head width.</summary>
    public int HeadSize => Dim / Heads;

    /// <summary>Rows of wk/wv: <c>n_kv_heads · head_size</c>.</summary>
    public int KvDim => KvHeads * HeadSize;

    /// <summary>The exact file length the header implies (header + fp32 tensors + RoPE tables + optional classifier).</summary>
    public long ExpectedFileBytes
    {
        get
        {
            long d = Dim, l = Layers, v = VocabSize;
            long floats = v * d                       // tok_embeddings
                + l * d                               // attention_norm
                + l * d * d + 2 * l * KvDim * d       // wq, wk, wv
                + l * d * d                           // wo
                + l * d                               // ffn_norm
                + 3 * l * HiddenDim * d               // w1, w2, w3
                + d                                   // final norm
                + (long)SeqLen * HeadSize             // freq_cis real + imaginary: 2 · seq_len · hs/2
                + (SharedClassifier ? 0 : v * d);     // wcls
            return Bytes + floats * sizeof(float);
        }
    }

    /// <summary>Reads and validates the header of <paramref name="path"/>.</summary>
    /// <exception cref="CheckpointFormatException">The file is shorter than a header or a value is impossible (the message names the file and field).</exception>
    public static Llama2cHeader Read(string path, Stream stream)
    {
        Span<byte> raw = stackalloc byte[Bytes];
        if (stream.ReadAtLeast(raw, Bytes, throwOnEndOfStream: false) < Bytes)
            throw new CheckpointFormatException($"{path}: shorter than the {Bytes}-byte llama2.c header.");
        var v = new int[7];
        for (int i = 0; i < 7; i++) v[i] = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(raw[(i * 4)..]);
        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (int i = 0; i < 7; i++)
        {
            long value = i == 5 ? Math.Abs((long)v[i]) : v[i];
            if (value <= 0 || value > 1 << 24)
                throw new CheckpointFormatException($"{path}: header {names[i]} = {v[i]} is not a plausible positive size; not a llama2.c checkpoint?");
        }
        var header = new Llama2cHeader(v[0], v[1], v[2], v[3], v[4], Math.Abs(v[5]), v[6], SharedClassifier: v[5] > 0);
        if (header.Dim % header.Heads != 0)
            throw new CheckpointFormatException($"{path}: header dim {header.Dim} is not divisible by n_heads {header.Heads}.");
        if (header.Heads % header.KvHeads != 0)
            throw new CheckpointFormatException($"{path}: header n_heads {header.Heads} is not divisible by n_kv_heads {header.KvHeads}.");
        if (header.HeadSize % 2 != 0)
            throw new CheckpointFormatException($"{path}: head size {header.HeadSize} (dim / n_heads) must be even for RoPE.");
        return header;
    }
}
