using System.CommandLine;
using ReplaceMe.Cli.Commands;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Cli;

/// <summary>The <c>replaceme</c> command-line app. Runnable in-process (tests) with captured writers.</summary>
public static class CliApp
{
    /// <summary>Builds the root command. Each verb lives in its own file under <c>Commands/</c>.</summary>
    public static RootCommand BuildRoot(CliContext context)
    {
        var root = new RootCommand("replaceme — training-free depth pruning of Llama-family models (ReplaceMe, NeurIPS 2025)");
        foreach (var command in CommandCatalog.All(context)) root.Subcommands.Add(command);
        return root;
    }

    /// <summary>Runs the app; returns the process exit code (0 success, 1 bad input or failure, 130 cancelled).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        var context = new CliContext(stdout, stderr);
        var root = BuildRoot(context);
        var config = new InvocationConfiguration { Output = stdout, Error = stderr };
        try
        {
            TorchRuntime.EnsureLoaded();
            var parsed = root.Parse(args);
            // Bad command lines follow the same one-line convention as every other error (see CliErrors).
            if (parsed.Errors.Count > 0)
                return CliErrors.Report(context, string.Join("; ", parsed.Errors.Select(e => e.Message)) + " (see --help)");
            int code = await parsed.InvokeAsync(config, cancellationToken).ConfigureAwait(false);
            // System.CommandLine's default handler swallows OperationCanceledException silently with exit code 1.
            return code != 0 && cancellationToken.IsCancellationRequested ? await Cancelled(stderr).ConfigureAwait(false) : code;
        }
        catch (OperationCanceledException)
        {
            return await Cancelled(stderr).ConfigureAwait(false);
        }
    }

    private static async Task<int> Cancelled(TextWriter stderr)
    {
        await stderr.WriteLineAsync("error: cancelled").ConfigureAwait(false);
        return 130;
    }
}

/// <summary>What every verb needs: where to write output and errors.</summary>
/// <param name="Out">Standard output.</param>
/// <param name="Error">Standard error (one-line error messages).</param>
public sealed record CliContext(TextWriter Out, TextWriter Error);
