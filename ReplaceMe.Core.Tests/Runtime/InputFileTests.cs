using System.Runtime.InteropServices;
using System.Text;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Tests.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Runtime;

/// <summary>
/// Every reader goes through <see cref="InputFile"/>: a FIFO, a device or a folder where a file is expected is refused
/// before it is opened (opening a FIFO for reading blocks until a writer comes: the run would hang), whole-file reads are
/// capped, and a JSON key named twice is an error naming the file and the key.
/// </summary>
public class InputFileTests
{
    [DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int MkFifo(byte[] path, uint mode);

    internal static void MakeFifo(string path)
    {
        Assert.True(MkFifo(Encoding.UTF8.GetBytes(path + "\0"), 0x1B6) == 0, $"mkfifo {path} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Runs <paramref name="read"/> and returns what it threw. If it blocks (the defect: open() on a FIFO waits
    /// for a writer), a writer is attached after a grace period so that the thread ends, and the test fails.</summary>
    private static Exception ThrowsWithoutBlocking(string fifo, Action read)
    {
        var task = Task.Run(() => Record.Exception(read));
        if (!task.Wait(TimeSpan.FromSeconds(20)))
        {
            using (var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write)) { }
            task.Wait(TimeSpan.FromSeconds(5));
            Assert.Fail($"Reading {fifo} blocked on the FIFO instead of refusing it.");
        }
        return task.Result ?? throw new Xunit.Sdk.XunitException($"Reading {fifo} did not fail.");
    }

    public static TheoryData<string, string> Readers => new()
    {
        { "config.json", "config" },
        { "tokenizer_config.json", "tokenizer" },
        { "tokenizer.json", "tokenizer" },
        { "tokenizer.model", "tokenizer" },
        { "model.safetensors", "weights" },
        { "model.safetensors.index.json", "weights" },
        { "calibration.txt", "calibration" },
        { "calibration.jsonl", "calibration" },
        { "calibration.parquet", "calibration" },
        { "task.jsonl", "task" },
        { "task.parquet", "task" },
        { "text.txt", "text" },
    };

    [Theory]
    [MemberData(nameof(Readers))]
    public void A_fifo_is_refused_before_it_is_opened(string name, string reader)
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine(name);
        MakeFifo(path);
        var ex = ThrowsWithoutBlocking(path, () => Read(reader, dir.Path, path));
        Assert.IsType<CheckpointFormatException>(ex, exactMatch: false);
        Assert.Contains("FIFO", ex.Message, StringComparison.Ordinal);
        Assert.Contains(name, ex.Message, StringComparison.Ordinal);
    }

    private static void Read(string reader, string dir, string path)
    {
        switch (reader)
        {
            case "config": ModelConfigJson.Load(path); break;
            case "tokenizer": TokenizerLoader.Load(dir); break;
            case "weights": SafetensorsReader.Open(path).Dispose(); break;
            case "calibration": CalibrationFile.Read(path); break;
            case "task": TaskLoader.LoadLambada(path); break;
            case "text": TaskLoader.ReadDocuments(path); break;
            default: throw new ArgumentOutOfRangeException(nameof(reader));
        }
    }

    [Fact]
    public void A_symlink_to_a_device_is_refused_and_a_symlink_to_a_file_is_read()
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = TestPaths.NewTempDir();
        File.CreateSymbolicLink(dir.Combine("tokenizer.json"), "/dev/zero");
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("character device", ex.Message, StringComparison.Ordinal);

        File.WriteAllText(dir.Combine("real.txt"), "one\n\ntwo\n");
        File.CreateSymbolicLink(dir.Combine("link.txt"), dir.Combine("real.txt"));
        Assert.Equal(["one", "two"], CalibrationFile.Read(dir.Combine("link.txt")));
        var folder = Assert.Throws<CheckpointFormatException>(() => InputFile.EnsureRegular(dir.Path, "Model config"));
        Assert.Contains("a folder", folder.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => InputFile.EnsureRegular(dir.Combine("missing.json"), "Model config"));
    }

    [Fact]
    public void Json_files_over_their_cap_are_refused_before_they_are_parsed()
    {
        using var dir = TestPaths.NewTempDir();
        var config = dir.Combine("config.json");
        using (var f = File.Create(config)) f.SetLength(InputFile.ConfigJsonMaxBytes + 1); // sparse: no disk or time spent
        var ex = Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Load(config));
        Assert.Contains("16,777,216-byte limit", ex.Message, StringComparison.Ordinal);
        Assert.Contains(config, ex.Message, StringComparison.Ordinal);

        var index = dir.Combine("model.safetensors.index.json");
        using (var f = File.Create(index)) f.SetLength(InputFile.ShardIndexMaxBytes + 1);
        Assert.Contains("67,108,864-byte limit", Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(index)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_calibration_line_over_the_line_cap_is_refused_with_its_number()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("long.txt");
        File.WriteAllText(path, "short\n" + new string('x', 5000) + "\n");
        var ex = Assert.Throws<CheckpointFormatException>(() => InputFile.ReadLines(path, "Calibration file", maxLineChars: 4096).ToList());
        Assert.Contains("line 2 is longer than 4,096 characters", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a\nb\r\nc\rd\n\ne")]
    [InlineData("\r\n\r\nx\r")]
    [InlineData("\uFEFFbom first line\nnaïve café 😀\n")]
    [InlineData("no newline at the end")]
    [InlineData("")]
    public void ReadLines_splits_lines_like_File_ReadLines(string content)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("t.txt");
        File.WriteAllText(path, content, new UTF8Encoding(false));
        Assert.Equal(File.ReadLines(path).ToList(), InputFile.ReadLines(path, "Text file").ToList());
    }

    [Fact]
    public void ReadLines_matches_File_ReadLines_across_buffer_boundaries()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("big.txt");
        var rng = new Random(7);
        var sb = new StringBuilder();
        string[] ends = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"];
        while (sb.Length < 300_000) sb.Append(new string((char)('a' + rng.Next(26)), rng.Next(0, 9000))).Append(ends[rng.Next(ends.Length)]);
        File.WriteAllText(path, sb.ToString());
        Assert.Equal(File.ReadLines(path).ToList(), InputFile.ReadLines(path, "Text file").ToList());
    }

    [Fact]
    public void A_key_named_twice_in_config_json_names_the_file_and_the_key()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("config.json");
        var json = ConfigSamples.TinyLlama_Chat.TrimEnd().TrimEnd('}') + ", \"num_hidden_layers\": 2 }";
        File.WriteAllText(path, json);
        var ex = Assert.Throws<CheckpointFormatException>(() => ModelConfigJson.Load(path));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("key 'num_hidden_layers' appears twice in the top-level object", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Keys_named_twice_in_the_other_json_files_name_the_file_the_key_and_where_it_is()
    {
        using var dir = TestPaths.NewTempDir();
        File.WriteAllText(dir.Combine("tokenizer_config.json"), """{"added_tokens_decoder": {"0": {"content": "<unk>", "content": "<s>"}}}""");
        var ex = Assert.Throws<CheckpointFormatException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("tokenizer_config.json", ex.Message, StringComparison.Ordinal);
        Assert.Contains("key 'content' appears twice in 'added_tokens_decoder.0'", ex.Message, StringComparison.Ordinal);

        var index = dir.Combine("model.safetensors.index.json");
        File.WriteAllText(index, """{"weight_map": {"a": "x.safetensors"}, "weight_map": {}}""");
        Assert.Contains("key 'weight_map' appears twice", Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(index)).Message, StringComparison.Ordinal);

        var jsonl = dir.Combine("c.jsonl");
        File.WriteAllText(jsonl, "{\"text\": \"one\"}\n{\"text\": \"two\", \"text\": \"three\"}\n");
        var cal = Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(jsonl));
        Assert.Contains("line 2: key 'text' appears twice", cal.Message, StringComparison.Ordinal);

        var task = dir.Combine("lambada.jsonl");
        File.WriteAllText(task, "{\"text\": \"a b c\", \"text\": \"d e\"}\n");
        Assert.Contains("key 'text' appears twice", Assert.Throws<CheckpointFormatException>(() => TaskLoader.LoadLambada(task)).Message, StringComparison.Ordinal);
    }
}
