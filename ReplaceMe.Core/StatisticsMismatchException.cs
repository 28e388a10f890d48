namespace ReplaceMe.Core;

/// <summary>
/// Statistics files that cannot be merged or used together: they were computed on a different model, for a different
/// cut, hidden size or activation dtype. The message names both files and the field that differs.
/// </summary>
public class StatisticsMismatchException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public StatisticsMismatchException() { }
    /// <summary>Creates the exception with a message.</summary>
    public StatisticsMismatchException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public StatisticsMismatchException(string message, Exception innerException) : base(message, innerException) { }
}
