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
internal sealed record BenchmarkSettings(bool Quick)
{
    /// <summary><c>--shape NAME</c>: the generated checkpoint's shape for the streaming benchmarks (<see cref="LlamaShape.For"/>).</summary>
    public string? Shape { get; init; }

    /// <summary><c>--dir FOLDER</c>: where large temporary checkpoints go (default: the temp folder).</summary>
    public string? WorkDir { get; init; }

    /// <summary><c>--cli PATH</c>: the CLI's <c>replaceme.dll</c> for <c>stream-prune</c> (default: the Release build beside the benchmark).</summary>
    public string? Cli { get; init; }

    /// <summary>Arguments after <c>--</c>, passed to the CLI by <c>stream-prune</c>.</summary>
    public IReadOnlyList<string> PassThrough { get; init; } = [];
}

/// <summary>One reported number.</summary>
/// <param name="Benchmark">The benchmark that produced it.</param>
/// <param name="Metric">What was measured (e.g. "tokens/s").</param>
/// <param name="Value">The value.</param>
/// <param name="Detail">Shapes, repetitions and anything needed to interpret the value.</param>
internal sealed record Measurement(string Benchmark, string Metric, double Value, string Detail);
