namespace ReplaceMe.Benchmarks;

/// <summary>
/// One benchmark of the suite. To add one: implement this interface and list an instance in
/// <see cref="BenchmarkCatalog.All"/>; it is then runnable by name from the command line.
/// </summary>
internal interface IBenchmark
{
    /// <summary>Short name used on the command line (e.g. <c>forward</c>).</summary>
    string Name { get; }

    /// <summary>One line saying what is measured.</summary>
    string Description { get; }

    /// <summary>Runs the benchmark and returns its measurements.</summary>
    IReadOnlyList<Measurement> Run(BenchmarkSettings settings);
}

/// <summary>Run-wide settings from the command line.</summary>
/// <param name="Quick">Fewer repetitions and smaller shapes, for a smoke run.</param>
internal sealed record BenchmarkSettings(bool Quick);

/// <summary>One reported number.</summary>
/// <param name="Benchmark">The benchmark that produced it.</param>
/// <param name="Metric">What was measured (e.g. "tokens/s").</param>
/// <param name="Value">The value.</param>
/// <param name="Detail">Shapes, repetitions and anything needed to interpret the value.</param>
internal sealed record Measurement(string Benchmark, string Metric, double Value, string Detail);
