using System.Diagnostics;
using System.Globalization;
using ReplaceMe.Core;
using ReplaceMe.Core.Pruning;
using Spectre.Console;

namespace ReplaceMe.Cli.Demo;

/// <summary>How the demo shows its stages: progress bars on a terminal, one line per stage otherwise.</summary>
internal interface IDemoUi
{
    /// <summary>Runs one stage, giving it a progress sink, and reports its duration.</summary>
    T Run<T>(string title, Func<IProgress<PruningProgress>, T> work);

    /// <summary>Shows one line of information (e.g. the run-time estimate).</summary>
    void Note(string line);

    /// <summary>Wall time of the last finished stage.</summary>
    TimeSpan LastStage { get; }
}

/// <summary>Plain lines: "[stage] title … done in 3.2 s". Used when output is redirected (CI, tests).</summary>
internal sealed class PlainDemoUi(TextWriter output) : IDemoUi
{
    public void Note(string line) => output.WriteLine(line);

    public TimeSpan LastStage { get; private set; }

    public T Run<T>(string title, Func<IProgress<PruningProgress>, T> work)
    {
        output.WriteLine($"» {title} …");
        var clock = Stopwatch.StartNew();
        var result = work(new Progress<PruningProgress>(_ => { }));
        LastStage = clock.Elapsed;
        output.WriteLine($"  done in {clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s");
        return result;
    }
}

/// <summary>Spectre.Console progress bars, one per stage, fed by the library's <see cref="PruningProgress"/> records.</summary>
internal sealed class SpectreDemoUi(ProgressContext context) : IDemoUi
{
    public TimeSpan LastStage { get; private set; }

    public void Note(string line)
    {
        // A finished row in the progress display, so the line stays visible above the stages that follow.
        var task = context.AddTask(Markup.Escape(line), maxValue: 1.0);
        task.Value = 1.0;
        task.StopTask();
    }

    public T Run<T>(string title, Func<IProgress<PruningProgress>, T> work)
    {
        var task = context.AddTask(Markup.Escape(title), maxValue: 1.0);
        task.IsIndeterminate = true;
        // Reports arrive on the compute thread; ProgressTask is thread-safe, so update it directly.
        var sink = new DirectProgress(p =>
        {
            if (p.Fraction is double f)
            {
                task.IsIndeterminate = false;
                task.Value = Math.Clamp(f, 0, 1);
            }
        });
        var clock = Stopwatch.StartNew();
        var result = work(sink);
        LastStage = clock.Elapsed;
        task.IsIndeterminate = false;
        task.Value = 1.0;
        task.StopTask();
        return result;
    }

    private sealed class DirectProgress(Action<PruningProgress> report) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value) => report(value);
    }
}
