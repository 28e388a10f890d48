using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;
using ReplaceMe.Core.Modeling;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Llama2c;

public class Llama2cFormatTests
{
    private static string TokenizerModel => Stories15MTestModel.Files.TokenizerModel;

    /// <summary>A tiny llama2.c file whose every float is its own index in the file (so positions are recognisable).</summary>
    private static void WriteTiny(string path, int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seqLen, bool shared, long dropBytes = 0)
    {
        int hs = dim / heads, kv = kvHeads * hs, v = Math.Abs(vocab);
        long floats = (long)v * dim + layers * dim + (long)layers * dim * dim + 2L * layers * kv * dim + (long)layers * dim * dim
            + layers * dim + 3L * layers * hidden * dim + dim + (long)seqLen * hs + (shared ? 0 : (long)v * dim);
        using var w = new BinaryWriter(File.Create(path));
        foreach (var x in new[] { dim, hidden, layers, heads, kvHeads, shared ? v : -v, seqLen }) w.Write(x);
        for (long i = 0; i < floats - dropBytes / 4; i++) w.Write((float)i);
    }

    [Fact]
    public void Untied_gqa_checkpoint_maps_every_tensor_and_permutes_q_and_k_rows_per_head()
    {
        using var dir = TestPaths.NewTempDir();
        const int dim = 8, hidden = 12, layers = 2, heads = 2, kvHeads = 1, vocab = 32000, seq = 4, hs = 4;
        var bin = dir.Combine("tiny.bin");
        WriteTiny(bin, dim, hidden, layers, heads, kvHeads, vocab, seq, shared: false);
        var outDir = dir.Combine("hf");
        Llama2cImporter.Import(bin, TokenizerModel, outDir);

        using var scope = NewDisposeScope();
        using var reader = SafetensorsReader.Open(outDir);
        Assert.True(reader.Contains("lm_head.weight"));
        long embed = (long)vocab * dim;
        Assert.Equal(0f, reader.Read("model.embed_tokens.weight")[0, 0].item<float>());
        Assert.Equal(embed, (long)reader.Read("model.layers.0.input_layernorm.weight")[0].item<float>());
        // wq of layer 1 starts after embed, both attention norms, and layer 0's wq. Its row r holds values start + r·dim + c.
        long wq1 = embed + layers * dim + dim * dim;
        var q = reader.Read("model.layers.1.self_attn.q_proj.weight");
        Assert.Equal([(long)dim, dim], q.shape);
        // Per head: new rows 0..hs/2-1 are old rows 0,2; new rows hs/2.. are old rows 1,3 (rotate-half layout).
        int[] oldRowOfNew = [0, 2, 1, 3, 4, 6, 5, 7];
        for (int r = 0; r < dim; r++)
            Assert.Equal(wq1 + oldRowOfNew[r] * dim, (long)q[r, 0].item<float>());
        long wk0 = embed + layers * dim + layers * dim * dim;
        var k = reader.Read("model.layers.0.self_attn.k_proj.weight");
        Assert.Equal([(long)hs * kvHeads, dim], k.shape);
        for (int r = 0; r < hs; r++)
            Assert.Equal(wk0 + oldRowOfNew[r] * dim, (long)k[r, 1].item<float>() - 1);
        // v is not permuted.
        long wv0 = wk0 + layers * hs * kvHeads * dim;
        Assert.Equal(wv0 + 1 * dim, (long)reader.Read("model.layers.0.self_attn.v_proj.weight")[1, 0].item<float>());
        // The classifier is the last tensor, after the final norm and the RoPE tables.
        long total = embed + layers * dim + 2L * layers * dim * dim + 2L * layers * hs * kvHeads * dim + layers * dim + 3L * layers * hidden * dim + dim + seq * hs;
        Assert.Equal(total, (long)reader.Read("lm_head.weight")[0, 0].item<float>());
        Assert.Equal([(long)hidden, dim], reader.Read("model.layers.1.mlp.gate_proj.weight").shape);
        Assert.Equal([(long)dim, hidden], reader.Read("model.layers.1.mlp.down_proj.weight").shape);
        var config = ModelConfigJson.Load(Path.Combine(outDir, "config.json"));
        Assert.False(config.TieWordEmbeddings);
        Assert.Equal(kvHeads, config.NumKeyValueHeads);
    }

    [Fact]
    public void A_truncated_file_names_expected_and_actual_sizes()
    {
        using var dir = TestPaths.NewTempDir();
        var bin = dir.Combine("cut.bin");
        using (var src = File.OpenRead(Stories15MTestModel.Files.Weights))
        using (var dst = File.Create(bin))
        {
            var buffer = new byte[1_000_000];
            src.ReadExactly(buffer);
            dst.Write(buffer);
        }
        var ex = Assert.Throws<CheckpointFormatException>(() => Llama2cImporter.Import(bin, TokenizerModel, dir.Combine("out")));
        Assert.Contains(bin, ex.Message);
        Assert.Contains("1000000 bytes", ex.Message);
        Assert.Contains("60816028", ex.Message);
        Assert.False(Directory.Exists(dir.Combine("out")));
    }

    [Fact]
    public void A_tied_header_on_an_untied_file_is_a_length_error()
    {
        using var dir = TestPaths.NewTempDir();
        var bin = dir.Combine("tiny.bin");
        WriteTiny(bin, 8, 12, 1, 2, 2, 32000, 4, shared: false);
        // Flip the vocab sign to "shared": the file is now one classifier too long.
        using (var f = File.OpenWrite(bin)) { f.Seek(20, SeekOrigin.Begin); f.Write(BitConverter.GetBytes(32000)); }
        var ex = Assert.Throws<CheckpointFormatException>(() => Llama2cImporter.Import(bin, TokenizerModel, dir.Combine("out")));
        Assert.Contains("shared classifier", ex.Message);
    }

    [Theory]
    [InlineData(new[] { 0, 16, 1, 2, 2, 32000, 4 }, "dim = 0")]
    [InlineData(new[] { 9, 16, 1, 2, 2, 32000, 4 }, "not divisible by n_heads")]
    [InlineData(new[] { 8, 16, 1, 2, 3, 32000, 4 }, "not divisible by n_kv_heads")]
    [InlineData(new[] { 6, 16, 1, 2, 2, 32000, 4 }, "must be even")]
    [InlineData(new[] { 8, 16, 1, 2, 2, 32000, -4 }, "seq_len = -4")]
    public void An_impossible_header_is_named(int[] header, string fragment)
    {
        using var dir = TestPaths.NewTempDir();
        var bin = dir.Combine("bad.bin");
        using (var w = new BinaryWriter(File.Create(bin))) foreach (var x in header) w.Write(x);
        var ex = Assert.Throws<CheckpointFormatException>(() => Llama2cImporter.Import(bin, TokenizerModel, dir.Combine("out")));
        Assert.Contains(bin, ex.Message);
        Assert.Contains(fragment, ex.Message);
    }

    [Fact]
    public void A_short_file_and_a_vocabulary_mismatch_are_reported()
    {
        using var dir = TestPaths.NewTempDir();
        var tiny = dir.Combine("tiny.bin");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("header", Assert.Throws<CheckpointFormatException>(() => Llama2cImporter.Import(tiny, TokenizerModel, dir.Combine("o1"))).Message);
        var bin = dir.Combine("v100.bin");
        WriteTiny(bin, 8, 12, 1, 2, 2, 100, 4, shared: true);
        var ex = Assert.Throws<CheckpointFormatException>(() => Llama2cImporter.Import(bin, TokenizerModel, dir.Combine("o2")));
        Assert.Contains("32000", ex.Message);
        Assert.Contains("vocab_size 100", ex.Message);
        Assert.Throws<FileNotFoundException>(() => Llama2cImporter.Import(dir.Combine("missing.bin"), TokenizerModel, dir.Combine("o3")));
    }
}
