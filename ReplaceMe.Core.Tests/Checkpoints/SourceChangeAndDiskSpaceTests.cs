using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;
using ReplaceMe.Core.Runtime;
using ReplaceMe.Core.Surgery;
using ReplaceMe.Core.Tests.Modeling;
using ReplaceMe.Core.Tests.Surgery;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>Issue 12, bad input and faults: a source shard that changes while it is read, and an output that does not fit on the disk.</summary>
public class SourceChangeAndDiskSpaceTests
{
    public SourceChangeAndDiskSpaceTests() => TorchRuntime.EnsureLoaded();

    private static string[] Entries(TempDir root) => [.. Directory.EnumerateFileSystemEntries(root.Path).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal)];

    [Fact]
    public void A_shard_touched_or_grown_between_two_reads_is_a_typed_error_naming_it()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        using (var reader = SafetensorsReader.Open(source))
        {
            var name = reader.Names.First(n => n.StartsWith("model.layers.3.", StringComparison.Ordinal));
            var shard = reader.Locate(name).File;
            var sibling = reader.Names.First(n => n != name && reader.Locate(n).File == shard);
            var other = reader.Names.First(n => reader.Locate(n).File != shard);
            reader.Read(name).Dispose();
            File.SetLastWriteTimeUtc(shard, File.GetLastWriteTimeUtc(shard).AddMinutes(5));
            var ex = Assert.Throws<SourceFileChangedException>(() => reader.Read(sibling));
            Assert.Equal(shard, ex.FilePath);
            Assert.Contains(shard, ex.Message);
            Assert.Contains("modification time", ex.Message);
            reader.Read(other).Dispose(); // the other shards are unchanged and still read
            Assert.Throws<SourceFileChangedException>(() => reader.CheckUnchanged("the test ended"));
        }
        using (var reader = SafetensorsReader.Open(source))
        {
            var (shard, _, _) = reader.Locate(reader.Names.First());
            long length = new FileInfo(shard).Length;
            using (var f = new FileStream(shard, FileMode.Append)) f.WriteByte(0);
            var ex = Assert.Throws<SourceFileChangedException>(() => reader.Read(reader.Names.First()));
            Assert.Contains($"size went from {length} to {length + 1} bytes", ex.Message);
        }
    }

    [Fact]
    public void A_shard_that_grows_during_the_rewrite_leaves_no_output()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        var shard = Directory.GetFiles(source, "model-*.safetensors").Order(StringComparer.Ordinal).Last();
        using var t = eye(32, dtype: ScalarType.Float64);
        bool appended = false;
        var append = new Progress(_ =>
        {
            if (appended) return;
            appended = true;
            using var f = new FileStream(shard, FileMode.Append);
            f.WriteByte(0);
        });
        var ex = Assert.Throws<SourceFileChangedException>(() =>
            PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t)], root.Combine("out"), progress: append));
        Assert.Equal(shard, ex.FilePath);
        Assert.Equal(["src"], Entries(root));
    }

    [Fact]
    public void Too_little_free_space_fails_before_anything_is_written_and_exactly_enough_succeeds()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        var outDir = root.Combine("out", "pruned");
        using var t = eye(32, dtype: ScalarType.Float64);
        long kept;
        using (var reader = SafetensorsReader.Open(source))
            kept = reader.Names.Where(n => !n.StartsWith("model.layers.2.", StringComparison.Ordinal) && !n.StartsWith("model.layers.3.", StringComparison.Ordinal))
                .Sum(n => reader.GetInfo(n).ByteCount);
        var probed = new List<string>();
        InsufficientDiskSpaceException ex;
        using (DiskSpace.UseProbe(p => { probed.Add(p); return 1_000_000; }))
            ex = Assert.Throws<InsufficientDiskSpaceException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t)], outDir));
        Assert.Equal([root.Path], probed);                         // the nearest folder that exists
        Assert.Equal(Path.GetFullPath(outDir), ex.Directory);
        Assert.Equal(1_000_000, ex.AvailableBytes);
        Assert.InRange(ex.RequiredBytes, kept + (64L << 20), kept + (64L << 20) + kept / 100 + 200_000); // tensors + margin + headers/config/tokenizer
        Assert.Contains(Path.GetFullPath(outDir), ex.Message);
        Assert.Equal(["src"], Entries(root));
        // The check a prune makes before it starts (2 equal blocks removed, which ones not yet known) asks for the same
        // bytes up to the config's few differing characters.
        using (DiskSpace.UseProbe(_ => 1_000_000))
        {
            var early = Assert.Throws<InsufficientDiskSpaceException>(() => PrunedCheckpointWriter.CheckDiskSpace(source, 2, outDir));
            Assert.InRange(early.RequiredBytes, ex.RequiredBytes - 200, ex.RequiredBytes + 200);
        }
        using (DiskSpace.UseProbe(_ => ex.RequiredBytes + 200))
            Assert.InRange(PrunedCheckpointWriter.CheckDiskSpace(source, 2, outDir), ex.RequiredBytes - 200, ex.RequiredBytes + 200);

        using (DiskSpace.UseProbe(_ => ex.RequiredBytes))
            PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t)], outDir);
        long written = Directory.GetFiles(outDir).Sum(f => new FileInfo(f).Length);
        Assert.InRange(written, kept, ex.RequiredBytes - (64L << 20));  // the estimate bounds what was written
    }

    [Fact]
    public void The_in_memory_save_checks_free_space_first_and_the_real_probe_answers()
    {
        using var root = TestPaths.NewTempDir();
        using var model = DecoderModel.Create(TinyModels.Llama(2), seed: 3);
        long float32Bytes = model.state_dict().Sum(kv => kv.Value.numel() * 4);
        InsufficientDiskSpaceException ex;
        using (DiskSpace.UseProbe(_ => 4096))
            ex = Assert.Throws<InsufficientDiskSpaceException>(() => model.SavePretrained(root.Combine("m")));
        Assert.InRange(ex.RequiredBytes, float32Bytes + (64L << 20), float32Bytes + (64L << 20) + float32Bytes / 100 + 100_000);
        Assert.Empty(Entries(root));
        Assert.True(DiskSpace.FreeBytes(root.Combine("not", "yet")) > 0); // statvfs of the temp file system, through its nearest existing folder
        model.SavePretrained(root.Combine("m"));
        Assert.True(File.Exists(root.Combine("m", "model.safetensors")));
    }

    [Fact]
    public void The_gguf_export_checks_free_space_first()
    {
        using var root = TestPaths.NewTempDir();
        var model = Stories15MTestModel.Shared.Model;
        long float32Bytes = model.state_dict().Sum(kv => kv.Value.numel() * 4);
        InsufficientDiskSpaceException ex;
        using (DiskSpace.UseProbe(_ => float32Bytes))
            ex = Assert.Throws<InsufficientDiskSpaceException>(() => model.SaveGguf(root.Combine("m.gguf"), new GgufExportOptions { DType = GgufDType.F32 }));
        Assert.True(ex.RequiredBytes > float32Bytes + (64L << 20), $"{ex.RequiredBytes}");
        Assert.Equal(root.Path, ex.Directory);
        Assert.Empty(Entries(root));
    }

    [Fact]
    public void A_write_that_fails_midway_like_a_full_disk_leaves_no_output()
    {
        using var root = TestPaths.NewTempDir();
        var source = PrunedCheckpointWriterTests.MakeSource(root);
        using var t = eye(32, dtype: ScalarType.Float64);
        var full = new Progress(_ => throw new IOException("No space left on device"));
        var ex = Assert.Throws<IOException>(() => PrunedCheckpointWriter.Write(source, [new CutTransform(new BlockCut(2, 4), t)], root.Combine("out"), progress: full));
        Assert.Contains("No space left", ex.Message);
        Assert.Equal(["src"], Entries(root)); // no target and no hidden temporary sibling
    }

    private sealed class Progress(Action<PruningProgress> action) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => action(value);
    }
}
