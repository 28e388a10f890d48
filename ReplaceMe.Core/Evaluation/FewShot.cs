namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Builds k-shot prefixes: k solved examples drawn without replacement from the task's few-shot split (or from
/// the evaluated items, never the item itself), each followed by the separator. The draw for item i uses
/// <c>Random(seed · 1000003 + i)</c>, so it does not depend on the evaluation order, batch size or limit.
/// </summary>
internal static class FewShot
{
    public static string Prefix(MultipleChoiceTask task, int itemIndex, EvaluationOptions options)
    {
        int k = options.Shots;
        if (k == 0) return "";
        var pool = task.FewShotItems ?? task.Items;
        bool samePool = task.FewShotItems is null;
        int available = pool.Count - (samePool ? 1 : 0);
        if (available < k)
            throw new ArgumentException($"Task '{task.Name}' needs {k} few-shot examples but its few-shot pool has only {available}.", nameof(options));

        var candidates = Enumerable.Range(0, pool.Count).Where(j => !samePool || j != itemIndex).ToArray();
#pragma warning disable CA5394 // a reproducible, seeded draw is intended, not security-relevant randomness
        var random = new Random(unchecked(options.Seed * 1_000_003 + itemIndex));
        var text = new System.Text.StringBuilder();
        for (int s = 0; s < k; s++)
        {
            int pick = s + random.Next(candidates.Length - s);
            (candidates[s], candidates[pick]) = (candidates[pick], candidates[s]);
            text.Append(pool[candidates[s]].SolvedText).Append(options.FewShotSeparator);
        }
#pragma warning restore CA5394
        return text.ToString();
    }
}
