using System.Diagnostics;
using ReplaceMe.Cli;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary>SIGTERM (what a scheduler or <c>kill</c> sends) and Ctrl-C become cancellation in the real CLI process.</summary>
public class SignalTests
{
    [Fact]
    public async Task Sigterm_cancels_the_demo_which_exits_130_and_leaves_no_temporary_folder()
    {
        if (OperatingSystem.IsWindows()) return; // POSIX signals; Ctrl-C on Windows takes the same cancellation path
        using var dir = TestPaths.NewTempDir();
        var outDir = dir.Combine("demo");
        var psi = new ProcessStartInfo("dotnet",
        [
            typeof(CliApp).Assembly.Location, "demo", "--model-source", Stories15MTestModel.FilesDir, "--out", outDir,
            "--calibration-stories", "64", "--held-out-stories", "32", "--story-tokens", "96", "--max-blocks", "2",
        ])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        // Wait until the demo is at work (it has printed something and created its temporary folder), then signal.
        string? first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(3));
        Assert.NotNull(first);
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!Directory.GetDirectories(dir.Path).Any(d => Path.GetFileName(d).StartsWith(".demo", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            await Task.Delay(100);
        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!)
            await kill.WaitForExitAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);

        string errors = await stderr;
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}: {errors}");
        Assert.Contains("error: cancelled", errors, StringComparison.Ordinal);
        Assert.Single(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path)); // no output, no hidden temporary folder
    }
}
