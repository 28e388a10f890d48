using System.Globalization;
using ReplaceMe.Benchmarks;
using ReplaceMe.Core.Runtime;

// Usage: replaceme-bench [--quick] [--list] [--shape 1b|8b|quick] [--dir FOLDER] [--cli PATH] [name ...] [-- CLI ARGS]
// (no names: run all; arguments after "--" go to the CLI run by stream-prune)
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
if (args.Length > 0 && args[0] == MeasuredChild.Flag) return MeasuredChild.Wrapper(args);
int dashes = Array.IndexOf(args, "--");
string[] passThrough = dashes < 0 ? [] : args[(dashes + 1)..];
if (dashes >= 0) args = args[..dashes];
string? Value(string option)
{
    int i = Array.IndexOf(args, option);
    if (i < 0) return null;
    if (i + 1 >= args.Length) throw new ArgumentException($"{option} needs a value.");
    return args[i + 1];
}
BenchmarkSettings settings;
try
{
    settings = new BenchmarkSettings(args.Contains("--quick"))
    {
        Shape = Value("--shape"), WorkDir = Value("--dir"), Cli = Value("--cli"), PassThrough = passThrough,
    };
    _ = LlamaShape.For(settings.Shape, settings.Quick); // a bad --shape fails before anything runs
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    return 2;
}
string[] valued = ["--shape", "--dir", "--cli"];
var names = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || !valued.Contains(args[i - 1]))).ToList();
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
    foreach (var m in benchmark.Run(settings))
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {m.Benchmark} | {m.Metric} | {m.Value:F1} | {m.Detail} |"));
}
return 0;
