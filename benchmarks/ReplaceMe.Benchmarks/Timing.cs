using System.Diagnostics;

namespace ReplaceMe.Benchmarks;

/// <summary>Stopwatch timing with warm-up: the median of several timed repetitions.</summary>
internal static class Timing
{
    /// <summary>Runs <paramref name="action"/> <paramref name="warmup"/> times untimed, then <paramref name="repetitions"/> times; returns the median seconds.</summary>
    public static double MedianSeconds(Action action, int warmup, int repetitions)
    {
        for (int i = 0; i < warmup; i++) action();
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[repetitions / 2];
    }
}
