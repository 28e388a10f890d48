using System.Text.Json.Nodes;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class HfCheckpointFolderTests
{
    public HfCheckpointFolderTests() => TorchRuntime.EnsureLoaded();

    private static ModelConfig Config() => ModelConfigJson.Parse(JsonNode.Parse(ConfigSamples.SmolLM_135M)!.AsObject(), "smollm");

    private static Dictionary<string, Tensor> StateDict()
    {
        var g = new torch.Generator(99);
        return new Dictionary<string, Tensor>
        {
            ["model.embed_tokens.weight"] = torch.randn([10, 4], generator: g),
            ["model.layers.0.mlp.down_proj.weight"] = torch.randn([4, 6], generator: g),
            ["model.norm.weight"] = torch.ones(4),
            ["step"] = torch.tensor(new long[] { 3 }),
        };
    }

    private static byte[] Bytes(Tensor t) => t.contiguous().bytes.ToArray();

    /// <summary>A source folder as downloaded from the Hub, with files that must and must not be copied.</summary>
    private static Dictionary<string, byte[]> MakeSource(string dir)
    {
        var rng = new Random(5);
        var binary = new byte[3000];
        rng.NextBytes(binary); // not valid UTF-8: proves a byte copy, not a text round trip
        var copied = new Dictionary<string, byte[]>
        {
            ["tokenizer.json"] = binary,
            ["tokenizer_config.json"] = "{\r\n  \"add_bos_token\": true\r\n}"u8.ToArray(),
            ["generation_config.json"] = "{\"do_sample\": false}"u8.ToArray(),
            ["special_tokens_map.json"] = "{}"u8.ToArray(),
            ["tokenizer.model"] = [0, 1, 2, 255],
        };
        foreach (var (name, bytes) in copied) File.WriteAllBytes(Path.Combine(dir, name), bytes);
        File.WriteAllText(Path.Combine(dir, "config.json"), ConfigSamples.Llama2_7B);
        File.WriteAllText(Path.Combine(dir, "model.safetensors"), "stale");
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), "stale");
        File.WriteAllText(Path.Combine(dir, "pytorch_model.bin"), "stale");
        File.WriteAllText(Path.Combine(dir, ".gitattributes"), "*.bin filter=lfs");
        Directory.CreateDirectory(Path.Combine(dir, "original"));
        File.WriteAllText(Path.Combine(dir, "original", "consolidated.00.pth"), "stale");
        return copied;
    }

    [Fact]
    public void Save_writes_config_tensors_and_copies_other_files_byte_for_byte()
    {
        using var root = TestPaths.NewTempDir();
        var source = root.Combine("src");
        Directory.CreateDirectory(source);
        var copied = MakeSource(source);
        var target = root.Combine("out");
        var config = Config().WithBlocksRemoved(3, 5);
        var tensors = StateDict();

        HfCheckpointFolder.Save(target, config, tensors, source,
            new SaveOptions { ExtraFiles = new Dictionary<string, string> { ["replaceme.json"] = "{\"cut\": [3, 5]}" } });

        var expectedFiles = copied.Keys.Concat(["config.json", "model.safetensors", "replaceme.json", OutputFolder.MarkerFileName]).Order(StringComparer.Ordinal);
        Assert.Equal(expectedFiles, Directory.GetFiles(target).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.GetDirectories(target));
        foreach (var (name, bytes) in copied) Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(target, name)));
        Assert.Equal("{\"cut\": [3, 5]}", File.ReadAllText(Path.Combine(target, "replaceme.json")));

        var loaded = ModelConfigJson.Load(Path.Combine(target, "config.json"));
        Assert.Equal(28, loaded.NumHiddenLayers);
        Assert.Equal(config.HiddenSize, loaded.HiddenSize);
        Assert.True(loaded.TieWordEmbeddings);
        using var reader = SafetensorsReader.Open(target);
        foreach (var (name, t) in tensors)
        {
            using var back = reader.Read(name);
            Assert.Equal(Bytes(t), Bytes(back));
        }
        Assert.Equal([target], Directory.GetDirectories(root.Path).Where(d => d != source)); // no temp siblings left
    }

    [Fact]
    public void DType_option_stores_floats_in_bf16_and_updates_torch_dtype()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("out");
        var tensors = StateDict();
        HfCheckpointFolder.Save(target, Config(), tensors, null, new SaveOptions { DType = ScalarType.BFloat16, MaxShardBytes = 100 });

        Assert.Equal("bfloat16", ModelConfigJson.Load(Path.Combine(target, "config.json")).TorchDtype);
        Assert.True(File.Exists(Path.Combine(target, "model.safetensors.index.json")));
        using var reader = SafetensorsReader.Open(target);
        Assert.Equal("BF16", reader.GetInfo("model.layers.0.mlp.down_proj.weight").DType);
        Assert.Equal("I64", reader.GetInfo("step").DType);
        using var stored = reader.Read("model.embed_tokens.weight");
        using var expected = tensors["model.embed_tokens.weight"].to(ScalarType.BFloat16);
        Assert.Equal(Bytes(expected), Bytes(stored));
    }

    [Fact]
    public void Existing_target_needs_overwrite()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("out");
        HfCheckpointFolder.Save(target, Config(), StateDict(), null, new SaveOptions());
        File.WriteAllText(Path.Combine(target, "stale.txt"), "x");
        var ex = Assert.Throws<IOException>(() => HfCheckpointFolder.Save(target, Config(), StateDict(), null, new SaveOptions()));
        Assert.Contains("--overwrite", ex.Message);
        Assert.True(File.Exists(Path.Combine(target, "stale.txt")));

        // The folder was written by this library (it has the marker), so --overwrite replaces it whole.
        HfCheckpointFolder.Save(target, Config(), StateDict(), null, new SaveOptions { Overwrite = true });
        Assert.False(File.Exists(Path.Combine(target, "stale.txt")));
        Assert.True(File.Exists(Path.Combine(target, "model.safetensors")));
    }

    [Fact]
    public void Failure_or_cancellation_leaves_no_target_and_no_temporary_folder()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("out");
        var bad = new Dictionary<string, Tensor> { ["a"] = torch.ones(2), ["z"] = torch.ones(2, ScalarType.ComplexFloat32) };
        Assert.Throws<UnsupportedModelException>(() => HfCheckpointFolder.Save(target, Config(), bad, null, new SaveOptions()));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => HfCheckpointFolder.Save(target, Config(), StateDict(), null, new SaveOptions(), cancellationToken: cts.Token));
        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    [Theory]
    [InlineData("config.json")]
    [InlineData("../escape.txt")]
    [InlineData("model.safetensors")]
    [InlineData("")]
    public void Bad_extra_file_names_are_refused(string name)
    {
        using var root = TestPaths.NewTempDir();
        var options = new SaveOptions { ExtraFiles = new Dictionary<string, string> { [name] = "x" } };
        Assert.Throws<ArgumentException>(() => HfCheckpointFolder.Save(root.Combine("out"), Config(), StateDict(), null, options));
        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    [Fact]
    public void Missing_source_folder_and_integer_dtype_are_refused()
    {
        using var root = TestPaths.NewTempDir();
        Assert.Throws<DirectoryNotFoundException>(() => HfCheckpointFolder.Save(root.Combine("out"), Config(), StateDict(), root.Combine("nope"), new SaveOptions()));
        Assert.Throws<ArgumentException>(() => HfCheckpointFolder.Save(root.Combine("out"), Config(), StateDict(), null, new SaveOptions { DType = ScalarType.Int32 }));
        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    [Fact]
    public async Task Only_companion_files_inside_the_folder_are_copied_and_links_fifos_and_devices_are_not_followed()
    {
        using var root = TestPaths.NewTempDir();
        var source = root.Combine("src");
        Directory.CreateDirectory(source);
        var copied = MakeSource(source);
        var secret = root.Combine("secret.txt");
        File.WriteAllText(secret, "password");
        File.CreateSymbolicLink(Path.Combine(source, "LICENSE"), secret);                 // a companion name, but outside
        File.CreateSymbolicLink(Path.Combine(source, "merges.txt"), "/dev/zero");         // would fill the disk
        File.WriteAllText(Path.Combine(source, "notes.txt"), "not a companion file");
        File.WriteAllText(Path.Combine(source, "real-vocab.json"), "{\"a\": 0}");
        File.CreateSymbolicLink(Path.Combine(source, "vocab.json"), "real-vocab.json");   // a link that stays inside: followed
        bool fifo = !OperatingSystem.IsWindows() && MakeFifo(Path.Combine(source, "chat_template.jinja"));
        var logger = new ListLogger();

        var target = root.Combine("out");
        var save = Task.Run(() => HfCheckpointFolder.Save(target, Config(), StateDict(), source, new SaveOptions(), logger));
        Assert.Same(save, await Task.WhenAny(save, Task.Delay(TimeSpan.FromSeconds(60))));   // a FIFO opened would hang here
        await save;

        var names = Directory.GetFiles(target).Select(f => Path.GetFileName(f)).ToHashSet();
        foreach (var name in copied.Keys) Assert.Contains(name, names);
        Assert.Contains("vocab.json", names);
        Assert.Equal("{\"a\": 0}", File.ReadAllText(Path.Combine(target, "vocab.json")));
        Assert.Null(new FileInfo(Path.Combine(target, "vocab.json")).LinkTarget);        // content, not a link
        foreach (var name in new[] { "LICENSE", "merges.txt", "notes.txt", "real-vocab.json", "chat_template.jinja" })
            Assert.DoesNotContain(name, names);
        Assert.Contains(logger.Lines, l => l.Contains("'LICENSE'", StringComparison.Ordinal) && l.Contains("outside the model folder", StringComparison.Ordinal));
        Assert.Contains(logger.Lines, l => l.Contains("'merges.txt'", StringComparison.Ordinal));
        Assert.Contains(logger.Lines, l => l.Contains("'notes.txt'", StringComparison.Ordinal));
        if (fifo) Assert.Contains(logger.Lines, l => l.Contains("'chat_template.jinja'", StringComparison.Ordinal) && l.Contains("not a regular file", StringComparison.Ordinal));
    }

    private static bool MakeFifo(string path)
    {
        try
        {
            using var p = System.Diagnostics.Process.Start("mkfifo", [path]);
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
