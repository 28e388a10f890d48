using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ReplaceMe.Core;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Surgery;
using static TorchSharp.torch;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// The streaming checkpoint rewrite on a generated random-weight bfloat16 checkpoint (<see cref="LlamaShape"/>, written
/// tensor by tensor with the project's own safetensors writer): <c>--shape 1b</c> (default; Llama-3.2-1B, 1 GiB shards)
/// removes blocks [8, 12), <c>--shape 8b</c> (Llama-3.1-8B, 5 GB shards) removes [20, 28), <c>--quick</c> (4 blocks,
/// vocab 32000) removes [1, 3); a random near-identity T is folded into the block before the cut. The rewrite runs in
/// a child process so that its peak resident set (VmHWM) is its own, not the generator's. Reports wall time, peak RSS,
/// bytes read and written, and checks that every untouched tensor is bit-identical to the source. The work folder goes
/// under <c>--dir FOLDER</c> (default: the temp folder; the 8b shape needs ~28 GB there) and is deleted at the end.
/// </summary>
internal sealed class StreamingRewriteBenchmark : IBenchmark
{
    public const string ChildFlag = "--streaming-rewrite-child";

    public string Name => "stream-rewrite";

    public string Description => "streaming pruned-checkpoint rewrite of a generated 1b/8b-shaped bf16 checkpoint (peak RSS, time, bytes, bit-identity)";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        var shape = LlamaShape.For(settings.Shape, settings.Quick);
        var cut = shape.Name switch { "8b" => new BlockCut(20, 28), "quick" => new BlockCut(1, 3), _ => new BlockCut(8, 12) };
        var root = Path.Combine(settings.WorkDir ?? Path.GetTempPath(), "replaceme-bench-" + Guid.NewGuid().ToString("N"));
        var source = Path.Combine(root, "source");
        var output = Path.Combine(root, "pruned");
        try
        {
            var clock = Stopwatch.StartNew();
            long sourceBytes = shape.WriteCheckpoint(source);
            double createSeconds = clock.Elapsed.TotalSeconds;

            var child = RunChild(source, output, cut, shape.Hidden);
            clock.Restart();
            var (identical, checkedTensors, _) = CheckpointCompare.UntouchedIdentical(source, output, [cut], shape.Layers);
            double checkSeconds = clock.Elapsed.TotalSeconds;
            var inv = CultureInfo.InvariantCulture;
            string what = string.Create(inv, $"{shape.Describe()}; {sourceBytes / 1e9:F2} GB of tensors on disk; cut {cut}");
            return
            [
                new Measurement(Name, "rewrite wall s", child.Seconds, what + string.Create(inv, $"; source written in {createSeconds:F0} s")),
                new Measurement(Name, "rewrite peak RSS MiB", child.PeakRssBytes / 1048576.0,
                    string.Create(inv, $"VmHWM of the child process (its RSS before the rewrite, libtorch loaded and T built: {child.RssBefore / 1048576.0:F0} MB); {100.0 * child.PeakRssBytes / sourceBytes:F1}% of the bf16 checkpoint, {100.0 * child.PeakRssBytes / (2.0 * sourceBytes):F1}% of its float32 size")),
                new Measurement(Name, "bytes read MiB", child.BytesRead / 1048576.0, "tensor bytes read from the source shards"),
                new Measurement(Name, "bytes written MiB", child.BytesWritten / 1048576.0, string.Create(inv, $"{child.Files} safetensors/index files")),
                new Measurement(Name, "untouched tensors bit-identical", identical ? 1 : 0,
                    string.Create(inv, $"{checkedTensors} tensors compared byte for byte with the source ({checkSeconds:F0} s); 1 = all identical")),
            ];
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private sealed record ChildResult(double Seconds, long PeakRssBytes, long BytesRead, long BytesWritten, int Files, long RssBefore);

    private static ChildResult RunChild(string source, string output, BlockCut cut, int hidden)
    {
        var self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(StreamingRewriteBenchmark).Assembly.Location);
        foreach (var a in new[] { ChildFlag, source, output, cut.Start.ToString(CultureInfo.InvariantCulture), cut.End.ToString(CultureInfo.InvariantCulture), hidden.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"The rewrite child failed ({process.ExitCode}): {text}");
        var o = JsonNode.Parse(text.Trim().Split('\n')[^1])!;
        return new ChildResult((double)o["seconds"]!, (long)o["peak_rss"]!, (long)o["read"]!, (long)o["written"]!, (int)o["files"]!, (long)o["rss_before"]!);
    }

    /// <summary>In the child: the rewrite alone, then one JSON line with the figures.</summary>
    public static int Child(string[] args)
    {
        var (source, output) = (args[1], args[2]);
        var cut = new BlockCut(int.Parse(args[3], CultureInfo.InvariantCulture), int.Parse(args[4], CultureInfo.InvariantCulture));
        int d = int.Parse(args[5], CultureInfo.InvariantCulture);
        using var t = eye(d, dtype: ScalarType.Float64).add(randn([d, d], ScalarType.Float64, generator: new Generator(5)).mul(0.01));
        long before = StatusKiB("VmRSS:") * 1024; // libtorch loaded and T built: the floor of any TorchSharp process
        var report = PrunedCheckpointWriter.Write(source, [new CutTransform(cut, t)], output);
        long peak = StatusKiB("VmHWM:") * 1024;
        Console.WriteLine(new JsonObject
        {
            ["seconds"] = report.Elapsed.TotalSeconds, ["peak_rss"] = peak, ["read"] = report.BytesRead, ["written"] = report.BytesWritten,
            ["files"] = report.Files.Count, ["rss_before"] = before,
        }.ToJsonString());
        return 0;
    }

    private static long StatusKiB(string field)
    {
        var line = File.ReadAllLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
