namespace ReplaceMe.Benchmarks;

/// <summary>Every benchmark the executable knows, in the order "all" runs them.</summary>
internal static class BenchmarkCatalog
{
    public static IReadOnlyList<IBenchmark> All { get; } =
    [
        new MatmulBenchmark(),
        new ForwardBenchmark(),
        new LeastSquaresMemoryBenchmark(),
        new AttentionBenchmark(),
        new PrunePassesBenchmark(),
        new ThreadsBenchmark(),
        new StreamingRewriteBenchmark(),
        new StreamPruneBenchmark(),
        new StreamingPruneBenchmark(),
        new StreamEvaluateBenchmark(),
        new CosineMemoryBenchmark(),
        new CosineMemoryBenchmark(lbfgs: true),
        new CosineQualityBenchmark(),
        new HealingQualityBenchmark(),
    ];
}
