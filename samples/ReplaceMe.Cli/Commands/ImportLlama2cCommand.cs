using System.CommandLine;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Llama2c;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme import-llama2c</c>: llama2.c <c>.bin</c> + <c>tokenizer.model</c> → Hugging Face Llama folder.</summary>
internal static class ImportLlama2cCommand
{
    public static Command Create(CliContext context)
    {
        var weights = new Option<string>("--weights") { Description = "llama2.c checkpoint (.bin, legacy fp32 format)", Required = true };
        var tokenizer = new Option<string>("--tokenizer") { Description = "The model's SentencePiece tokenizer.model", Required = true };
        var output = CliOptions.Out("Hugging Face model folder to create");
        var overwrite = CliOptions.Overwrite();
        var command = new Command("import-llama2c", "Convert a llama2.c checkpoint and its tokenizer.model into a Hugging Face Llama folder.")
        {
            weights, tokenizer, output, overwrite,
        };
        command.SetAction(parse => CliErrors.Run(context, () =>
        {
            var outDir = parse.GetValue(output)!;
            Llama2cImporter.Import(parse.GetValue(weights)!, parse.GetValue(tokenizer)!, outDir, parse.GetValue(overwrite));
            context.Out.WriteLine($"wrote {Path.GetFullPath(outDir)}");
            return 0;
        }));
        return command;
    }
}
