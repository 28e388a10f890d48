namespace ReplaceMe.Core;

/// <summary>
/// A memory budget (for example <c>PruningOptions.MemoryBudgetBytes</c>) is smaller than the least working memory a
/// step needs; raised before the step starts. The message names the budget, the bytes needed and what to do.
/// </summary>
public class InsufficientMemoryBudgetException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public InsufficientMemoryBudgetException() { }
    /// <summary>Creates the exception with a message.</summary>
    public InsufficientMemoryBudgetException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public InsufficientMemoryBudgetException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The budget given, in bytes.</summary>
    public long BudgetBytes { get; init; }

    /// <summary>The least bytes the step needs.</summary>
    public long RequiredBytes { get; init; }
}
