using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ReplaceMe.Core;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// <c>replaceme prune</c> end to end, as a user runs it, on a generated random-weight bf16 checkpoint
/// (<see cref="LlamaShape"/>: <c>--shape 1b</c> by default, <c>8b</c>, or <c>quick</c>) with a generated calibration
/// file of 2 documents × 512 byte tokens (batch size 1, max length 512), <c>--blocks 4</c> (8 for 8b, 2 for quick)
/// <c>--estimator lstsq --allow-underdetermined</c> (1024 tokens are fewer than the hidden size). The CLI
/// (<c>samples/ReplaceMe.Cli</c>'s built <c>replaceme.dll</c>, or <c>--cli PATH</c>) runs as a child process through
/// <see cref="MeasuredChild"/>; arguments after <c>--</c> are passed to it (e.g. <c>-- --max-memory 4GB --streaming</c>).
/// The source shards are evicted from the page cache first, so the child's block reads are real disk reads.
/// Reports the child's wall time, the stages from its <c>replaceme.json</c> (<c>timings_seconds</c>) and its output
/// lines' times, its peak RSS, its bytes read and written, checks that every untouched tensor of the output is
/// bit-identical to its source tensor and that the output loads, then deletes everything. <c>--dir FOLDER</c> puts the
/// work folder there (the 8b shape needs ~16 GB for the source and ~12 GB for the output).
/// </summary>
internal sealed class StreamPruneBenchmark : IBenchmark
{
    public string Name => "stream-prune";

    public string Description => "replaceme prune (child process) on a generated 1b/8b-shaped bf16 checkpoint: stage times, peak RSS, I/O, bit-identity";

    public IReadOnlyList<Measurement> Run(BenchmarkSettings settings)
    {
        var shape = LlamaShape.For(settings.Shape, settings.Quick);
        int blocks = shape.Name switch { "8b" => 8, "quick" => 2, _ => 4 };
        var cli = settings.Cli ?? FindCli();
        var work = Path.Combine(settings.WorkDir ?? Path.GetTempPath(), "replaceme-stream-prune-" + Guid.NewGuid().ToString("N"));
        var source = Path.Combine(work, "source");
        var output = Path.Combine(work, "pruned");
        var inv = CultureInfo.InvariantCulture;
        try
        {
            var clock = Stopwatch.StartNew();
            long sourceBytes = shape.WriteCheckpoint(source);
            double createSeconds = clock.Elapsed.TotalSeconds;
            var calibration = LlamaShape.WriteCalibration(Path.Combine(work, "calibration.txt"), documents: 2, tokens: 512);
            foreach (var f in Directory.GetFiles(source)) MeasuredChild.EvictFromPageCache(f);

            var host = Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
            List<string> command =
            [
                host, cli, "prune", "--model", source, "--calibration", calibration, "--batch-size", "1", "--max-length", "512",
                "--blocks", blocks.ToString(inv), "--estimator", "lstsq", "--allow-underdetermined", "--out", output, .. settings.PassThrough,
            ];
            Console.Error.WriteLine($"stream-prune: {shape.Describe()}; source written in {createSeconds:F0} s; running: {string.Join(' ', command)}");
            var child = MeasuredChild.Run(command, work);

            var provenance = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "replaceme.json")))!;
            var cuts = provenance["removed"]!.AsArray().Select(c => new BlockCut((int)c!["start"]!, (int)c["end"]!)).ToList();
            var timings = provenance["timings_seconds"]!.AsObject().Select(kv => $"{kv.Key} {(double)kv.Value!:F1} s");
            clock.Restart();
            var (identical, compared, comparedBytes) = CheckpointCompare.UntouchedIdentical(source, output, cuts, shape.Layers);
            int outBlocks = LlamaShape.CheckLoads(output);
            double checkSeconds = clock.Elapsed.TotalSeconds;
            long outputBytes = Directory.GetFiles(output).Sum(f => new FileInfo(f).Length);
            double f32 = 4.0 * shape.Parameters;
            string lineTimes = string.Join("; ", child.Log.Where(l => l.Line.StartsWith("blocks ", StringComparison.Ordinal) || l.Line.StartsWith("saved ", StringComparison.Ordinal))
                .Select(l => string.Create(inv, $"'{(l.Line.StartsWith("saved ", StringComparison.Ordinal) ? "saved" : l.Line.Split(';')[0])}' at {l.Seconds:F1} s")));
            string args = string.Join(' ', command.Skip(2).Select(a => a == source ? "SRC" : a == output ? "OUT" : a == calibration ? "calibration.txt" : a));
            string what = string.Create(inv, $"{shape.Describe()}; `replaceme {args}`; removed {string.Join(", ", cuts)}");
            return
            [
                new Measurement(Name, "prune wall s (child)", child.Seconds, what + string.Create(inv, $"; source written in {createSeconds:F0} s (not counted)")),
                new Measurement(Name, "stages s (replaceme.json)", provenance["timings_seconds"]!["total"] is { } t ? (double)t : double.NaN,
                    string.Join(", ", timings) + "; output lines: " + lineTimes),
                new Measurement(Name, "peak RSS MiB (child)", child.PeakRssBytes / 1048576.0,
                    string.Create(inv, $"ru_maxrss of the child; {child.PeakRssBytes / f32:P0} of the float32 size ({f32 / 1e9:F2} GB), {child.PeakRssBytes / (double)sourceBytes:P0} of the bf16 checkpoint; polled VmHWM {child.PolledPeakRssBytes / 1048576.0:F0} MiB")),
                new Measurement(Name, "disk read MiB (read_bytes)", child.BlockReadBytes / 1048576.0,
                    string.Create(inv, $"ru_inblock × 512: bytes the child's reads and page faults (mmap included) fetched from the disk, page cache evicted first; rchar {child.ReadChars / 1048576.0:F0} MiB (read()-family syscalls only, mmap never counts); source {sourceBytes / 1048576.0:F0} MiB")),
                new Measurement(Name, "disk write MiB (write_bytes)", child.BlockWriteBytes / 1048576.0,
                    string.Create(inv, $"ru_oublock × 512 (dirty pages the child sent to the disk; the kernel may flush the rest after it exits); wchar {child.WriteChars / 1048576.0:F0} MiB; output folder {outputBytes / 1048576.0:F0} MiB")),
                new Measurement(Name, "untouched tensors bit-identical", identical ? 1 : 0,
                    string.Create(inv, $"{compared} tensors ({comparedBytes / 1048576.0:F0} MiB) compared byte for byte with their renumbered source tensors; output loads: {outBlocks} blocks, tensors and tokenizer checked ({checkSeconds:F0} s); 1 = all identical")),
            ];
        }
        finally
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>samples/ReplaceMe.Cli/bin/Release/net10.0/replaceme.dll above the benchmark's folder.</summary>
    private static string FindCli()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "samples", "ReplaceMe.Cli", "bin", "Release", "net10.0", "replaceme.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException("The CLI was not found: build it (dotnet build -c Release samples/ReplaceMe.Cli) or pass --cli PATH/replaceme.dll.");
    }
}
