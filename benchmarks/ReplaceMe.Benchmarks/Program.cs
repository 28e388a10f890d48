using System.Globalization;
using ReplaceMe.Benchmarks;
using ReplaceMe.Core.Runtime;

// Usage: replaceme-bench [--quick] [--list] [name ...]   (no names: run all)
if (args.Length > 0 && args[0] == StreamingRewriteBenchmark.ChildFlag)
{
    TorchRuntime.EnsureLoaded();
    return StreamingRewriteBenchmark.Child(args);
}
if (args.Length > 0 && args[0] == StreamingPruneBenchmark.ChildFlag)
{
    TorchRuntime.EnsureLoaded();
    return StreamingPruneBenchmark.Child(args);
}
var quick = args.Contains("--quick");
var names = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToList();
if (args.Contains("--list"))
{
    foreach (var b in BenchmarkCatalog.All) Console.WriteLine($"{b.Name,-16} {b.Description}");
    return 0;
}
var unknown = names.Where(n => BenchmarkCatalog.All.All(b => b.Name != n)).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"Unknown benchmark(s): {string.Join(", ", unknown)}. Known: {string.Join(", ", BenchmarkCatalog.All.Select(b => b.Name))}.");
    return 2;
}
TorchRuntime.EnsureLoaded();
Console.WriteLine($"Machine: {Environment.ProcessorCount} logical cores, {Environment.OSVersion}, .NET {Environment.Version}, torch threads {TorchSharp.torch.get_num_threads()}");
Console.WriteLine("| benchmark | metric | value | detail |");
Console.WriteLine("|---|---|---|---|");
foreach (var benchmark in BenchmarkCatalog.All.Where(b => names.Count == 0 || names.Contains(b.Name)))
{
    foreach (var m in benchmark.Run(new BenchmarkSettings(quick)))
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {m.Benchmark} | {m.Metric} | {m.Value:F1} | {m.Detail} |"));
}
return 0;
