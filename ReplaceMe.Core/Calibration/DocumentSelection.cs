namespace ReplaceMe.Core.Calibration;

/// <summary>Which documents of a source to keep: all, the first N, or a seeded random N.</summary>
/// <param name="Count">How many documents to keep; null keeps all.</param>
/// <param name="Random">False takes the first <paramref name="Count"/> documents (the reference code's choice);
/// true draws <paramref name="Count"/> documents uniformly without replacement, seeded by <paramref name="Seed"/>,
/// and keeps them in file order.</param>
/// <param name="Seed">Seed of the random draw.</param>
public sealed record DocumentSelection(int? Count = null, bool Random = false, int Seed = 0)
{
    /// <summary>Keep every document in file order.</summary>
    public static DocumentSelection All { get; } = new();

    /// <summary>The first <paramref name="count"/> documents.</summary>
    public static DocumentSelection First(int count) => new(count);

    /// <summary><paramref name="count"/> documents drawn at random with <paramref name="seed"/>.</summary>
    public static DocumentSelection Sample(int count, int seed) => new(count, true, seed);

    /// <summary>Applies the selection to a list of documents (in file order).</summary>
    /// <exception cref="InvalidOperationException"><see cref="Count"/> is not positive.</exception>
    internal IReadOnlyList<T> Apply<T>(IReadOnlyList<T> items)
    {
        if (Count is null) return items;
        if (Count <= 0) throw new InvalidOperationException($"DocumentSelection.Count must be positive, got {Count}.");
        int n = Math.Min(Count.Value, items.Count);
        if (!Random) return items.Take(n).ToList();
        // Partial Fisher-Yates over indices; sorting the chosen indices keeps file order, so the same seed and
        // file always give the same documents in the same order.
        var rng = new System.Random(Seed);
        var idx = Enumerable.Range(0, items.Count).ToArray();
        for (int i = 0; i < n; i++)
        {
            int j = rng.Next(i, idx.Length);
            (idx[i], idx[j]) = (idx[j], idx[i]);
        }
        return idx.Take(n).Order().Select(i => items[i]).ToList();
    }
}
