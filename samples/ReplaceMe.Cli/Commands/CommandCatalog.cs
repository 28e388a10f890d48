using System.CommandLine;

namespace ReplaceMe.Cli.Commands;

/// <summary>Every verb of the app, in help order. Add a verb: write <c>Commands/XxxCommand.cs</c> with a
/// <c>public static Command Create(CliContext context)</c> and list it here.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All(CliContext context)
    {
        yield return DemoCommand.Create(context);
        yield return ProfileCommand.Create(context);
        yield return PruneCommand.Create(context);
        yield return CalibrateCommand.Create(context);
        yield return SweepCommand.Create(context);
        yield return EvaluateCommand.Create(context);
        yield return ExportGgufCommand.Create(context);
        yield return ImportLlama2cCommand.Create(context);
        yield return GenerateCommand.Create(context);
        yield return TokenizeCommand.Create(context);
        yield return InfoCommand.Create(context);
    }
}
