using System.CommandLine;
using ReplaceMe.Core.Runtime;
using TorchSharp;

namespace ReplaceMe.Cli.Commands;

/// <summary><c>replaceme info</c>: versions and how TorchSharp was loaded.</summary>
internal static class InfoCommand
{
    public static Command Create(CliContext context)
    {
        var command = new Command("info", "Show the library version, TorchSharp and how its native backend was loaded.");
        command.SetAction(_ =>
        {
            TorchRuntime.EnsureLoaded();
            using var probe = torch.randn(4, 4);
            context.Out.WriteLine($"ReplaceMe.Core {typeof(TorchRuntime).Assembly.GetName().Version}");
            context.Out.WriteLine($"TorchSharp     {typeof(torch).Assembly.GetName().Version}");
            context.Out.WriteLine($"native load    {TorchRuntime.LoadMode}{(TorchRuntime.PatchedLibraryPath is { } p ? " (" + p + ")" : "")}");
            context.Out.WriteLine($"CUDA available {torch.cuda.is_available()}");
            return 0;
        });
        return command;
    }
}
