namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// One multiple-choice question as log-likelihood requests: choice <c>i</c> is scored as the sum of the
/// log-probabilities of <see cref="Continuations"/>[i] given <see cref="Contexts"/>[i].
/// </summary>
/// <remarks>
/// Ordinary tasks share one context and put the choice in the continuation (<see cref="Create"/>); partially scored
/// tasks such as WinoGrande put the choice in the context and share the continuation (<see cref="Partial"/>).
/// </remarks>
public sealed class MultipleChoiceItem
{
    private MultipleChoiceItem(IReadOnlyList<string> contexts, IReadOnlyList<string> continuations, int label, IReadOnlyList<int> normalizationLengths)
    {
        Contexts = contexts;
        Continuations = continuations;
        Label = label;
        NormalizationLengths = normalizationLengths;
    }

    /// <summary>The context of each choice (all equal for ordinary tasks).</summary>
    public IReadOnlyList<string> Contexts { get; }

    /// <summary>The scored text of each choice, including its leading delimiter (usually a space).</summary>
    public IReadOnlyList<string> Continuations { get; }

    /// <summary>Index of the correct choice.</summary>
    public int Label { get; }

    /// <summary>Character lengths that <c>acc_norm</c> divides the log-likelihoods by (the choice text without the delimiter, as the harness does).</summary>
    public IReadOnlyList<int> NormalizationLengths { get; }

    /// <summary>Number of choices.</summary>
    public int ChoiceCount => Continuations.Count;

    /// <summary>An item whose choices follow one context: continuation i is <paramref name="delimiter"/> + choice i.</summary>
    /// <exception cref="ArgumentException">Fewer than two choices, an empty choice, or a label out of range.</exception>
    public static MultipleChoiceItem Create(string context, IReadOnlyList<string> choices, int label, string delimiter = " ")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(choices);
        ArgumentNullException.ThrowIfNull(delimiter);
        Check(choices.Count, label);
        for (int i = 0; i < choices.Count; i++)
            if (string.IsNullOrEmpty(choices[i]) && delimiter.Length == 0)
                throw new ArgumentException($"Choice {i} is empty, so there is nothing to score.", nameof(choices));
        return new MultipleChoiceItem(
            Enumerable.Repeat(context, choices.Count).ToArray(),
            choices.Select(c => delimiter + c).ToArray(),
            label,
            choices.Select(c => Math.Max(1, c.Length)).ToArray());
    }

    /// <summary>A partially scored item: choice i is context i, and only the shared <paramref name="continuation"/> is scored.</summary>
    /// <exception cref="ArgumentException">Fewer than two contexts, an empty continuation, or a label out of range.</exception>
    public static MultipleChoiceItem Partial(IReadOnlyList<string> contexts, string continuation, int label)
    {
        ArgumentNullException.ThrowIfNull(contexts);
        ArgumentException.ThrowIfNullOrEmpty(continuation);
        Check(contexts.Count, label);
        return new MultipleChoiceItem(
            contexts.ToArray(),
            Enumerable.Repeat(continuation, contexts.Count).ToArray(),
            label,
            Enumerable.Repeat(Math.Max(1, continuation.TrimStart().Length), contexts.Count).ToArray());
    }

    /// <summary>The solved form of this item used as a few-shot example: the correct context and continuation.</summary>
    internal string SolvedText => Contexts[Label] + Continuations[Label];

    private static void Check(int count, int label)
    {
        if (count < 2) throw new ArgumentException($"An item needs at least two choices (got {count}).", nameof(count));
        if (label < 0 || label >= count) throw new ArgumentException($"Label {label} is outside [0, {count}).", nameof(label));
    }
}
