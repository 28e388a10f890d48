using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tests.Cli;

namespace ReplaceMe.Core.Tests.Modeling;

/// <summary>
/// A checkpoint whose weights do not fit in the machine's memory is refused before anything is allocated, with one
/// line that says how much was needed and what to do (issue 11, item 7). The checkpoint is honest (names, shapes and
/// byte ranges agree with its config); its data section is a sparse file, so it costs no disk.
/// </summary>
public class MemoryGuardTests
{
    /// <summary>A one-block Llama whose float32 weights are twice this machine's memory, stored as bf16 (sparse).</summary>
    private static string WriteOversizedModel(TempDir dir, out long float32Bytes)
    {
        long machine = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        const int d = 4096, heads = 32, kv = 8, headDim = 128, vocab = 32000;
        long perFf = 3L * d; // gate, up, down
        long fixedElements = 2L * vocab * d + 2L * d * d + 2L * kv * headDim * d + 3L * d;
        long ff = ((2 * machine / 4) - fixedElements) / perFf + 1;
        var config = TinyModels.Llama(layers: 1) with
        {
            HiddenSize = d, IntermediateSize = checked((int)ff), NumAttentionHeads = heads, NumKeyValueHeads = kv,
            HeadDim = headDim, VocabSize = vocab, TorchDtype = "bfloat16",
        };
        var folder = dir.Combine("big");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), ModelConfigJson.ToJson(config).ToJsonString());
        foreach (var file in Directory.GetFiles(Stories15MTestModel.Shared.ModelDir, "tokenizer*"))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));

        var header = new JsonObject();
        long offset = 0, elements = 0;
        foreach (var (name, shape) in TinyModels.ExpectedShapes(config).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            header[name] = new JsonObject
            {
                ["dtype"] = "BF16",
                ["shape"] = new JsonArray([.. shape.Select(s => (JsonNode)s)]),
                ["data_offsets"] = new JsonArray(offset, offset + 2 * n),
            };
            offset += 2 * n;
            elements += n;
        }
        var bytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        using (var stream = new FileStream(Path.Combine(folder, "model.safetensors"), FileMode.CreateNew))
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)bytes.Length);
            stream.Write(length);
            stream.Write(bytes);
            stream.SetLength(8 + bytes.Length + offset); // sparse: the data section is never written
        }
        float32Bytes = 4 * elements;
        Assert.True(float32Bytes > machine, "the model must exceed the machine's memory");
        return folder;
    }

    [Fact]
    public void Weights_larger_than_the_machine_are_refused_before_allocation_with_sizes_and_advice()
    {
        using var dir = TestPaths.NewTempDir();
        var folder = WriteOversizedModel(dir, out long float32Bytes);
        long before = Environment.WorkingSet;

        var ex = Assert.Throws<InsufficientModelMemoryException>(() => DecoderModel.FromPretrained(folder));

        Assert.Equal(float32Bytes, ex.RequiredBytes);
        Assert.Equal(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, ex.DeviceBytes);
        Assert.Contains(folder, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"{float32Bytes / 1e9:F1} GB".Replace(',', '.'), ex.Message, StringComparison.Ordinal);
        Assert.Contains("16-bit dtype", ex.Message, StringComparison.Ordinal);
        // Nothing of the model's size was allocated on the way (a float32 shell would be tens of GB).
        Assert.True(Environment.WorkingSet - before < 1L << 30, $"working set grew by {(Environment.WorkingSet - before) >> 20} MiB");
    }

    [Fact]
    public void The_cli_prints_one_error_line_for_a_model_that_does_not_fit()
    {
        using var dir = TestPaths.NewTempDir();
        var folder = WriteOversizedModel(dir, out _);
        var r = CliRun.Run("generate", "--model", folder, "--prompt", "Once upon a time", "--max-new-tokens", "4");
        CliRun.AssertOneLineError(r, "for its weights as Float32 but this machine has");
    }

    [Fact]
    public void Allocator_failures_are_recognised_and_reduced_to_their_first_line()
    {
        var native = new System.Runtime.InteropServices.ExternalException(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 8589934592 bytes.\nException raised from ...\nframe #0: ...");
        Assert.True(ReplaceMe.Core.Runtime.MemoryGuard.IsAllocationFailure(native));
        Assert.True(ReplaceMe.Core.Runtime.MemoryGuard.IsAllocationFailure(new OutOfMemoryException()));
        Assert.False(ReplaceMe.Core.Runtime.MemoryGuard.IsAllocationFailure(new System.Runtime.InteropServices.ExternalException("shape mismatch")));
        Assert.Equal("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate 8589934592 bytes.",
            ReplaceMe.Core.Runtime.MemoryGuard.FirstLine(native));
    }
}
