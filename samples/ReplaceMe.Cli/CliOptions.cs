using System.CommandLine;

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
}
