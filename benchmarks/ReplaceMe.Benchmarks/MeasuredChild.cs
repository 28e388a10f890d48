using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace ReplaceMe.Benchmarks;

/// <summary>
/// Runs a command as a child process and measures it exactly, through a wrapper: the benchmark starts itself with
/// <see cref="Flag"/>, and that wrapper starts the command as its only child. After the child has exited and been
/// reaped, the wrapper's <c>getrusage(RUSAGE_CHILDREN)</c> holds exactly that child's figures — its peak resident set
/// (<c>ru_maxrss</c>, the kernel's high-water mark, which a poll can miss at exit) and its block I/O
/// (<c>ru_inblock</c>/<c>ru_oublock</c> in 512-byte units, the same accounting as <c>read_bytes</c>/<c>write_bytes</c>
/// of <c>/proc/PID/io</c>). <c>/proc/PID/io</c> is also polled every 100 ms for <c>rchar</c>/<c>wchar</c> (bytes
/// passed through read/write system calls; a memory-mapped read is not a system call and never counts there) — their
/// last poll can miss the final 100 ms. Every output line of the child is logged with its time since the start.
/// </summary>
internal static class MeasuredChild
{
    public const string Flag = "--measured-child";

    /// <summary>What the wrapper measured.</summary>
    public sealed record Result(double Seconds, int ExitCode, long PeakRssBytes, long PolledPeakRssBytes, long BlockReadBytes,
        long BlockWriteBytes, long ReadChars, long WriteChars, IReadOnlyList<(double Seconds, string Line)> Log);

    /// <summary>Runs <paramref name="command"/> (program, then arguments) through the wrapper; throws when it fails.</summary>
    public static Result Run(IReadOnlyList<string> command, string workDir)
    {
        var json = Path.Combine(workDir, "child-measure.json");
        var self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(MeasuredChild).Assembly.Location);
        start.ArgumentList.Add(Flag);
        start.ArgumentList.Add(json);
        foreach (var a in command) start.ArgumentList.Add(a);
        using (var wrapper = Process.Start(start)!)
        {
            wrapper.WaitForExit();
            if (wrapper.ExitCode != 0 && !File.Exists(json)) throw new InvalidOperationException($"The measuring wrapper failed ({wrapper.ExitCode}).");
        }
        var o = JsonNode.Parse(File.ReadAllText(json))!;
        var log = o["log"]!.AsArray().Select(e => ((double)e!["t"]!, (string)e["line"]!)).ToList();
        var result = new Result((double)o["seconds"]!, (int)o["exit_code"]!, (long)o["maxrss"]!, (long)o["polled_hwm"]!, (long)o["inblock_bytes"]!,
            (long)o["oublock_bytes"]!, (long)o["rchar"]!, (long)o["wchar"]!, log);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"'{string.Join(' ', command)}' failed ({result.ExitCode}):\n{string.Join('\n', log.TakeLast(30).Select(l => l.Item2))}");
        return result;
    }

    /// <summary>In the wrapper: run the command, echo its output with timestamps, write the figures as JSON.</summary>
    public static int Wrapper(string[] args)
    {
        var json = args[1];
        var start = new ProcessStartInfo(args[2]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args.Skip(3)) start.ArgumentList.Add(a);
        var log = new List<(double, string)>();
        var clock = Stopwatch.StartNew();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (log) log.Add((clock.Elapsed.TotalSeconds, line));
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  [{clock.Elapsed.TotalSeconds,7:F1} s] {line}"));
        }
        using var child = new Process { StartInfo = start };
        child.OutputDataReceived += (_, e) => OnLine(e.Data);
        child.ErrorDataReceived += (_, e) => OnLine(e.Data);
        child.Start();
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        long hwm = 0, rchar = 0, wchar = 0;
        while (!child.WaitForExit(100))
        {
            try
            {
                hwm = Math.Max(hwm, Field($"/proc/{child.Id}/status", "VmHWM:") * 1024);
                rchar = Math.Max(rchar, Field($"/proc/{child.Id}/io", "rchar:"));
                wchar = Math.Max(wchar, Field($"/proc/{child.Id}/io", "wchar:"));
            }
            catch (IOException) { } // exited between the check and the read
            catch (UnauthorizedAccessException) { }
        }
        child.WaitForExit(); // drains the output
        double seconds = clock.Elapsed.TotalSeconds;
        if (getrusage(RusageChildren, out var usage) != 0) throw new InvalidOperationException("getrusage(RUSAGE_CHILDREN) failed.");
        var entries = new JsonArray();
        lock (log) foreach (var (t, line) in log) entries.Add(new JsonObject { ["t"] = t, ["line"] = line });
        File.WriteAllText(json, new JsonObject
        {
            ["seconds"] = seconds, ["exit_code"] = child.ExitCode, ["maxrss"] = usage.MaxRssKiB * 1024, ["polled_hwm"] = hwm,
            ["inblock_bytes"] = usage.InBlock * 512, ["oublock_bytes"] = usage.OuBlock * 512, ["rchar"] = rchar, ["wchar"] = wchar, ["log"] = entries,
        }.ToJsonString());
        return 0;
    }

    private static long Field(string path, string name)
    {
        foreach (var line in File.ReadLines(path))
            if (line.StartsWith(name, StringComparison.Ordinal))
                return long.Parse(line.AsSpan(name.Length).Trim().ToString().Split(' ')[0], CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Drops <paramref name="path"/>'s pages from the page cache (fsync, then POSIX_FADV_DONTNEED), so that the
    /// next reader's <c>read_bytes</c> counts what it really reads from the disk.</summary>
    public static void EvictFromPageCache(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        _ = fsync((int)handle.DangerousGetHandle());
        _ = posix_fadvise((int)handle.DangerousGetHandle(), 0, 0, 4);
    }

    private const int RusageChildren = -1;

    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UtimeSec, UtimeUsec, StimeSec, StimeUsec;
        public long MaxRssKiB, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NvCsw, NivCsw;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out Rusage usage);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int posix_fadvise(int fd, long offset, long len, int advice);
}
