using System.CommandLine;
using ReplaceMe.Core.Modeling;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme generate</c>: the prompt followed by the model's continuation.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var prompt = new Option<string>("--prompt", "-p") { Description = "Text to continue", Required = true };
        var maxNewTokens = new Option<int>("--max-new-tokens", "-n") { Description = "Most tokens to add", DefaultValueFactory = _ => 64 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 = greedy", DefaultValueFactory = _ => 0.0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass in (0, 1]", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int?>("--seed") { Description = "Sampling seed (same seed, same text)" };
        var threads = CliOptions.Threads();
        // Checked while parsing, so that a bad value fails before the model is loaded.
        CliOptions.Require(maxNewTokens, n => n >= 0, "--max-new-tokens must be ≥ 0.");
        CliOptions.Require(temperature, t => t >= 0 && !double.IsInfinity(t), "--temperature must be a finite number ≥ 0.");
        CliOptions.Require(topP, p => p > 0 && p <= 1, "--top-p must be in (0, 1].");
        var command = new Command("generate", "Continue a prompt with a model and print the prompt followed by the generated text.")
        {
            model, prompt, maxNewTokens, temperature, topP, seed, threads,
        };
        command.SetAction(parse => CliErrors.Run(context, () =>
        {
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNewTokens),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed),
            };
            using var threadScope = CliOptions.UseThreads(parse, threads);
            var (decoder, tokenizer) = CliModels.Load(parse.GetValue(model)!);
            using (decoder)
            {
                var text = new TextGenerator(decoder).Generate(tokenizer, [parse.GetValue(prompt)!], options)[0];
                context.Out.WriteLine(text);
            }
            return 0;
        }));
        return command;
    }
}
