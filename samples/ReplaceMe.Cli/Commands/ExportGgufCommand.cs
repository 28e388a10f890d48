using System.CommandLine;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme export-gguf</c>: a Hugging Face folder (original or pruned) as one GGUF file for llama.cpp, LLamaSharp, Ollama or LM Studio.</summary>
internal static class ExportGgufCommand
{
    /// <summary>The <c>--dtype</c> / <c>--gguf-dtype</c> names.</summary>
    public static readonly string[] DTypeNames = ["f32", "f16", "bf16", "q8_0"];

    /// <summary>The storage type for a <c>--dtype</c> name.</summary>
    public static GgufDType ParseDType(string name) => name switch
    {
        "f32" => GgufDType.F32,
        "f16" => GgufDType.F16,
        "bf16" => GgufDType.BF16,
        "q8_0" => GgufDType.Q8_0,
        _ => throw new ArgumentException($"GGUF dtype '{name}' is not one of {string.Join(", ", DTypeNames)}."),
    };

    /// <summary>A <c>--dtype</c>-style option restricted to <see cref="DTypeNames"/>, default f16.</summary>
    public static Option<string> DTypeOption(string name)
    {
        var option = new Option<string>(name) { Description = "Weight storage: f32 (exact), f16, bf16 or q8_0 (8-bit blocks); norms stay f32", DefaultValueFactory = _ => "f16" };
        option.AcceptOnlyFromAmong(DTypeNames);
        return option;
    }

    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var output = new Option<string>("--out", "-o") { Description = "The .gguf file to write", Required = true };
        var dtype = DTypeOption("--dtype");
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the file if it exists" };
        var command = new Command("export-gguf", "Write a model folder as one GGUF file (llama.cpp, LLamaSharp, Ollama, LM Studio read it).")
        {
            model, output, dtype, overwrite,
        };
        command.SetAction((parse, ct) => CliErrors.RunAsync(context, () =>
        {
            var path = parse.GetValue(output)!;
            if (Directory.Exists(path)) throw new IOException($"--out '{path}' is a folder; expected a .gguf file path.");
            if (File.Exists(path) && !parse.GetValue(overwrite)) throw new IOException($"Output file '{path}' already exists; pass --overwrite to replace it.");
            var (decoder, _) = CliModels.Load(parse.GetValue(model)!);
            using (decoder)
            {
                var options = new GgufExportOptions { DType = ParseDType(parse.GetValue(dtype)!), Overwrite = parse.GetValue(overwrite) };
                decoder.SaveGguf(path, options, cancellationToken: ct);
                context.Out.WriteLine(Describe(path, decoder.BlockCount, parse.GetValue(dtype)!));
            }
            return Task.FromResult(0);
        }));
        return command;
    }

    /// <summary>The line printed after an export.</summary>
    public static string Describe(string path, int blocks, string dtype) =>
        $"wrote {Path.GetFullPath(path)} ({blocks} blocks, {dtype}, {new FileInfo(path).Length / (1024.0 * 1024.0):F1} MiB)";
}
