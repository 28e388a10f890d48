using ReplaceMe.Core.Evaluation;

namespace ReplaceMe.Core.Tests.Evaluation;

/// <summary>Scores tasks on a <see cref="TableModel"/> with the character tokenizer by hand, in float64, without torch.</summary>
internal static class TaskReference
{
    /// <summary>Sum of log p(continuation characters) after BOS + context, with the harness's trailing-space move.</summary>
    public static double LogLikelihood(TableModel model, string context, string continuation)
    {
        int spaces = context.Length - context.TrimEnd().Length;
        string text = context + continuation;
        int contextChars = context.Length - spaces;
        var ids = new CharTokenizer().Encode(text);
        double sum = 0;
        for (int t = 1 + contextChars; t < ids.Count; t++) sum += model.LogProb(ids[t - 1], t - 1, ids[t]);
        return sum;
    }

    public static (double Acc, double AccNorm) Accuracies(TableModel model, IReadOnlyList<MultipleChoiceItem> items)
    {
        int acc = 0, accNorm = 0;
        foreach (var item in items)
        {
            var ll = Enumerable.Range(0, item.ChoiceCount).Select(c => LogLikelihood(model, item.Contexts[c], item.Continuations[c])).ToArray();
            var norm = ll.Select((v, c) => v / item.NormalizationLengths[c]).ToArray();
            if (Array.IndexOf(ll, ll.Max()) == item.Label) acc++;
            if (Array.IndexOf(norm, norm.Max()) == item.Label) accNorm++;
        }
        return ((double)acc / items.Count, (double)accNorm / items.Count);
    }

    /// <summary>Writes lines to a file in a fresh temp folder.</summary>
    public static string Write(TempDir dir, string name, params string[] lines)
    {
        var path = dir.Combine(name);
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }
}
