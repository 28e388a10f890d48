using ReplaceMe.Core;

namespace ReplaceMe.Cli;

/// <summary>
/// The app's error convention, shared by every verb: an expected failure (bad input, a malformed or missing file, an
/// unsupported model) is printed as one line <c>error: &lt;message&gt;</c> on standard error and the exit code is 1.
/// Unexpected exceptions (bugs) are left to System.CommandLine's handler, which prints the stack trace.
/// </summary>
/// <example>
/// <code>
/// command.SetAction(parse => CliErrors.Run(context, () =>
/// {
///     var model = parse.GetValue(CliOptions.Model)!;   // library calls may throw ReplaceMeException, ArgumentException, IOException
///     context.Out.WriteLine(...);
///     return 0;
/// }));
/// </code>
/// </example>
internal static class CliErrors
{
    /// <summary>Exit code for bad input or a failed operation.</summary>
    public const int Failure = 1;

    /// <summary>Runs a verb's work, turning an expected failure into the one-line error and exit code 1.</summary>
    public static int Run(CliContext context, Func<int> action)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(action);
        try
        {
            return action();
        }
        catch (Exception ex) when (IsExpected(ex))
        {
            return Report(context, ex.Message);
        }
        catch (Exception ex) when (IsAllocationFailure(ex))
        {
            return Report(context, OutOfMemoryMessage(ex));
        }
    }

    /// <summary>Asynchronous form of <see cref="Run"/>.</summary>
    public static async Task<int> RunAsync(CliContext context, Func<Task<int>> action)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(action);
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception ex) when (IsExpected(ex))
        {
            return Report(context, ex.Message);
        }
        catch (Exception ex) when (IsAllocationFailure(ex))
        {
            return Report(context, OutOfMemoryMessage(ex));
        }
    }

    /// <summary>Writes <c>error: &lt;message&gt;</c> as a single line to standard error and returns <see cref="Failure"/>.</summary>
    public static int Report(CliContext context, string message)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Error.WriteLine("error: " + OneLine(message));
        return Failure;
    }

    /// <summary>Failures caused by the user's input or files rather than by a bug.</summary>
    public static bool IsExpected(Exception ex) =>
        ex is ReplaceMeException or ArgumentException or IOException or UnauthorizedAccessException or FormatException;

    /// <summary>
    /// An allocation failure that the library did not already explain (it does for loading a model): .NET's
    /// <see cref="OutOfMemoryException"/> or LibTorch's allocator errors, which arrive as
    /// <see cref="System.Runtime.InteropServices.ExternalException"/> with a native stack trace.
    /// </summary>
    public static bool IsAllocationFailure(Exception ex) => InsufficientModelMemoryException.IsAllocationFailure(ex);

    /// <summary>One line for an allocation failure: the allocator's first line (not its stack trace) and what to do.</summary>
    public static string OutOfMemoryMessage(Exception ex)
    {
        var text = ex.Message;
        int cut = text.IndexOfAny(['\r', '\n']);
        var first = (cut < 0 ? text : text[..cut]).Trim();
        return $"out of memory ({first}). Use smaller calibration batches (--batch-size), shorter documents (--max-length) " +
            "or fewer of them (--samples), close other programs, or use a machine with more memory.";
    }

    private static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
