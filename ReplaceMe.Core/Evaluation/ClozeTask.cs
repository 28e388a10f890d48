using System.Text.RegularExpressions;

namespace ReplaceMe.Core.Evaluation;

/// <summary>A last-word prediction item: the model must continue <see cref="Context"/> with exactly <see cref="Target"/>.</summary>
/// <param name="Context">Text before the target word.</param>
/// <param name="Target">The target word with its leading space (" word"), as LAMBADA scores it.</param>
public sealed record ClozeItem(string Context, string Target);

/// <summary>A LAMBADA-style task: predict the final word of each passage.</summary>
/// <param name="Name">Task name used in reports.</param>
/// <param name="Items">The passages split into context and target word.</param>
/// <param name="SkippedItems">Passages the builder skipped (too short, or not ending in a word).</param>
public sealed partial record ClozeTask(string Name, IReadOnlyList<ClozeItem> Items, int SkippedItems = 0)
{
    /// <summary>
    /// Builds a cloze task from any documents: the target is the document's last word (letters and digits, with
    /// inner apostrophes or hyphens), without the punctuation after it; the context is everything before it.
    /// Documents with fewer than <paramref name="minContextWords"/> words before the target, or with no word, are
    /// skipped and counted.
    /// </summary>
    public static ClozeTask FromDocuments(string name, IEnumerable<string> documents, int minContextWords = 8)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentOutOfRangeException.ThrowIfNegative(minContextWords);
        var items = new List<ClozeItem>();
        int skipped = 0;
        foreach (var doc in documents)
        {
            if (TrySplit(doc ?? "", minContextWords) is { } item) items.Add(item);
            else skipped++;
        }
        return new ClozeTask(name, items, skipped);
    }

    internal static ClozeItem? TrySplit(string document, int minContextWords)
    {
        var text = document.TrimEnd();
        Match? last = null;
        for (var m = WordPattern().Match(text); m.Success; m = m.NextMatch()) last = m;
        if (last is null) return null;
        string before = text[..last.Index];
        if (before.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length < minContextWords) return null;
        // A word after whitespace is scored as " word" (the harness's target); a word glued to a quote keeps no space.
        string context = before.TrimEnd();
        string target = context.Length < before.Length ? " " + last.Value : last.Value;
        return context.Length == 0 ? null : new ClozeItem(context, target);
    }

    [GeneratedRegex(@"[\p{L}\p{N}]+(?:['’\-][\p{L}\p{N}]+)*")]
    private static partial Regex WordPattern();
}
