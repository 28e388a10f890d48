using System.CommandLine;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Cli;

/// <summary>Options several verbs share, built fresh per command (an option belongs to one command).</summary>
internal static class CliOptions
{
    /// <summary><c>--model DIR</c>: a Hugging Face model folder (config.json, safetensors, tokenizer files). Required.</summary>
    public static Option<string> Model() => new("--model", "-m")
    {
        Description = "Hugging Face model folder (config.json, *.safetensors, tokenizer.json or tokenizer.model)",
        Required = true,
    };

    /// <summary><c>--out DIR</c>: the folder a verb writes. Required.</summary>
    public static Option<string> Out(string description) => new("--out", "-o") { Description = description, Required = true };

    /// <summary><c>--overwrite</c>: allow replacing an existing output folder.</summary>
    public static Option<bool> Overwrite() => new("--overwrite") { Description = "Replace the output folder if it exists" };

    /// <summary>
    /// Default of <c>--threads</c>: one LibTorch thread. On the project's shared 2-core machines one thread was faster
    /// than two for pruning and for generation, and used less CPU (docs/benchmarks.md, "Threads").
    /// </summary>
    public const int DefaultThreads = 1;

    /// <summary><c>--threads N</c>: LibTorch intra-op threads for the command; 0 = LibTorch's default (one per core).</summary>
    public static Option<int> Threads()
    {
        var option = new Option<int>("--threads")
        {
            Description = $"LibTorch threads for this command; 0 = LibTorch's default (one per core). Default {DefaultThreads}: faster on a shared or small CPU (docs/benchmarks.md)",
            DefaultValueFactory = _ => DefaultThreads,
        };
        Require(option, t => t >= 0, "--threads must be ≥ 0 (0 = LibTorch's default, one per core).");
        return option;
    }

    /// <summary>Sets the threads <paramref name="option"/> asks for until the scope is disposed; null for 0 (the process setting stays).</summary>
    public static TorchThreads? UseThreads(ParseResult parse, Option<int> option) =>
        parse.GetValue(option) is > 0 and var threads ? TorchThreads.Use(threads) : null;

    /// <summary>Adds a parse-time check of an option's value (so that bad values fail before any heavy work starts).</summary>
    public static void Require<T>(Option<T> option, Func<T, bool> isValid, string message)
    {
        ArgumentNullException.ThrowIfNull(option);
        option.Validators.Add(result =>
        {
            T value;
            try
            {
                value = result.GetValueOrDefault<T>();
            }
            catch (InvalidOperationException)
            {
                return; // not convertible: the parser already reports that error
            }
            if (!isValid(value)) result.AddError(message);
        });
    }
}
