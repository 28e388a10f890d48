using System.CommandLine;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Runtime;
using TorchSharp;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme info</c>: versions and how TorchSharp was loaded; with <c>--model</c>, the model's size in each
/// dtype and whether it fits <c>--max-memory</c>.</summary>
internal static class InfoCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Option<string?>("--model", "-m") { Description = "Also print this model folder's weight size in float32, bfloat16 and float16 (read from the safetensors headers, nothing loaded)" };
        var maxMemory = new Option<string?>("--max-memory") { Description = "A memory budget such as 8GB or 7.5GiB: say whether the model's weights fit it in each dtype (needs --model)" };
        CliOptions.Require(maxMemory, s => s is null || CliSizes.TryParse(s, out _), "--max-memory must be a positive size such as 8GB, 7.5GiB or 512MB.");
        var command = new Command("info", "Show the library version, TorchSharp and how its native backend was loaded; with --model, the model's size in each dtype.")
        {
            model, maxMemory,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(maxMemory) is not null && result.GetResult(model) is null) result.AddError("--max-memory needs --model DIR.");
        });
        command.SetAction(parse => CliErrors.Run(context, () =>
        {
            TorchRuntime.EnsureLoaded();
            using var probe = torch.randn(4, 4);
            context.Out.WriteLine($"ReplaceMe.Core {typeof(TorchRuntime).Assembly.GetName().Version}");
            context.Out.WriteLine($"TorchSharp     {typeof(torch).Assembly.GetName().Version}");
            context.Out.WriteLine($"native load    {TorchRuntime.LoadMode}{(TorchRuntime.PatchedLibraryPath is { } p ? " (" + p + ")" : "")}");
            context.Out.WriteLine($"CUDA available {torch.cuda.is_available()}");
            if (parse.GetValue(model) is string dir) PrintSizes(context.Out, dir, parse.GetValue(maxMemory));
            return 0;
        }));
        return command;
    }

    /// <summary>Parameter count from the headers (the tied LM head counted once), its bytes per dtype, and the budget check.</summary>
    private static void PrintSizes(TextWriter o, string dir, string? budgetText)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Model folder not found: {dir}");
        var config = ModelConfigJson.Load(Path.Combine(dir, "config.json"));
        using var reader = SafetensorsReader.Open(dir);
        long parameters = 0, stored = 0;
        foreach (var name in reader.Names)
        {
            if (config.TieWordEmbeddings && name == "lm_head.weight") continue;
            var info = reader.GetInfo(name);
            parameters += info.Shape.Aggregate(1L, (a, b) => a * b);
            stored += info.ByteCount;
        }
        o.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"model          {Path.GetFullPath(dir)}: {config.ModelType}, {config.NumHiddenLayers} blocks, d {config.HiddenSize}, {parameters:N0} parameters"));
        o.WriteLine($"  stored       {CliSizes.Format(stored)} ({config.TorchDtype})");
        long? budget = budgetText is not null && CliSizes.TryParse(budgetText, out var b) ? b : null;
        foreach (var (dtype, bytesPer) in new[] { ("float32", 4L), ("bfloat16", 2L), ("float16", 2L) })
        {
            long size = parameters * bytesPer;
            string fits = budget is long limit ? (size <= limit ? $"  fits {budgetText}" : $"  does NOT fit {budgetText}") : "";
            o.WriteLine($"  {dtype,-12} {CliSizes.Format(size)}{fits}");
        }
        if (budget is long l && parameters * 4 > l)
            o.WriteLine("  note: on CPU the model runs in float32; the weights alone exceed the budget, before activations.");
    }
}
