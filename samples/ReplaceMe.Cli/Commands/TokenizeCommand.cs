using System.CommandLine;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme tokenize</c>: the model's token ids for a text, on one line.</summary>
internal static class TokenizeCommand
{
    public static Command Create(CliContext context)
    {
        var model = CliOptions.Model();
        var text = new Option<string>("--text", "-t") { Description = "Text to encode", Required = true };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add BOS/EOS" };
        var command = new Command("tokenize", "Print the token ids of a text (space separated, one line) with the model's tokenizer.")
        {
            model, text, noSpecial,
        };
        command.SetAction(parse => CliErrors.Run(context, () =>
        {
            var tokenizer = TokenizerLoader.Load(parse.GetValue(model)!);
            var ids = tokenizer.Encode(parse.GetValue(text)!, addSpecialTokens: !parse.GetValue(noSpecial));
            context.Out.WriteLine(string.Join(' ', ids));
            return 0;
        }));
        return command;
    }
}
