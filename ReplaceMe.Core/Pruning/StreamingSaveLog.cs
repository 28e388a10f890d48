using Microsoft.Extensions.Logging;

namespace ReplaceMe.Core.Pruning;

/// <summary>Log lines of <see cref="PruningResult.Save(string, Modeling.SaveOptions, CancellationToken)"/>'s choice of writer.</summary>
internal static partial class StreamingSaveLog
{
    [LoggerMessage(EventId = 720, Level = LogLevel.Information, Message = "Writing the pruned model from memory, not from its source folder: {Reason}")]
    public static partial void WritingFromMemory(ILogger logger, string reason);
}
