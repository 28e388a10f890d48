using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Core.Selection;

/// <summary>Validation, greedy disjoint choice and merging of cuts, shared by the selectors.</summary>
internal static class CutPlanning
{
    /// <summary>Checks n and the cut count against the model's block count.</summary>
    /// <exception cref="PruningException">n or the cut count cannot be satisfied.</exception>
    public static void ValidateRequest(SelectionRequest request, string selector)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(request.Model, nameof(request));
        int blocks = request.Model.BlockCount, n = request.BlocksPerCut, k = request.CutCount;
        if (n < 1)
            throw new PruningException($"Selector '{selector}': BlocksPerCut (n) must be at least 1, got {n}.");
        if (n >= blocks)
            throw new PruningException($"Selector '{selector}': BlocksPerCut (n) = {n} but the model has {blocks} blocks; n must be at most {blocks - 1} because block 0 is never removed.");
        if (k < 1)
            throw new PruningException($"Selector '{selector}': CutCount must be at least 1, got {k}.");
        if ((long)k * n > blocks - 1)
            throw new PruningException($"Selector '{selector}': {k} cuts of {n} blocks remove {(long)k * n} blocks, but only blocks 1..{blocks - 1} ({blocks - 1} blocks) can be removed.");
    }

    /// <summary>Checks that the profile describes this model and covers n.</summary>
    public static void ValidateProfile(SelectionRequest request, string selector)
    {
        var profile = request.Profile ?? throw new PruningException($"Selector '{selector}' needs a distance profile (request.Profile is null).");
        if (profile.BlockCount != request.Model.BlockCount)
            throw new PruningException($"Selector '{selector}': the distance profile was measured on {profile.BlockCount} blocks but the model has {request.Model.BlockCount}.");
        if (profile.MaxLength < request.BlocksPerCut)
            throw new PruningException($"Selector '{selector}': the distance profile covers n = 1..{profile.MaxLength} but BlocksPerCut is {request.BlocksPerCut}; measure it with maxLength ≥ {request.BlocksPerCut}.");
    }

    /// <summary>
    /// Walks candidate starts in the given order (best first) and accepts a cut <c>[s, s + n)</c> when its blocks are
    /// disjoint from every accepted cut; stops after <paramref name="count"/> cuts. Adjacent cuts are disjoint.
    /// </summary>
    /// <exception cref="PruningException">Fewer than <paramref name="count"/> disjoint cuts exist in that order.</exception>
    public static List<BlockCut> GreedyDisjoint(IEnumerable<int> startsBestFirst, int n, int count, string selector)
    {
        var accepted = new List<BlockCut>();
        foreach (int s in startsBestFirst)
        {
            var cut = new BlockCut(s, s + n);
            if (accepted.TrueForAll(a => !Overlaps(a, cut))) accepted.Add(cut);
            if (accepted.Count == count) return accepted;
        }
        throw new PruningException($"Selector '{selector}': the greedy choice found only {accepted.Count} disjoint cuts of {n} blocks ({string.Join(", ", accepted)}), {count} requested; ask for fewer or shorter cuts.");
    }

    /// <summary>True when the two cuts share a block.</summary>
    public static bool Overlaps(BlockCut a, BlockCut b) => a.Start < b.End && b.Start < a.End;

    /// <summary>Sorts cuts by start and, when <paramref name="merge"/>, fuses runs where one cut ends where the next starts.</summary>
    public static List<BlockCut> SortAndMerge(IEnumerable<BlockCut> cuts, bool merge)
    {
        var sorted = cuts.OrderBy(c => c.Start).ToList();
        if (!merge) return sorted;
        var merged = new List<BlockCut>();
        foreach (var c in sorted)
        {
            if (merged.Count > 0 && merged[^1].End == c.Start) merged[^1] = new BlockCut(merged[^1].Start, c.End);
            else merged.Add(c);
        }
        return merged;
    }

    /// <summary>Checks each cut against the block count and that no two share a block.</summary>
    public static void ValidateCuts(IReadOnlyList<BlockCut> cuts, int blockCount, string selector)
    {
        if (cuts.Count == 0) throw new PruningException($"Selector '{selector}': no cut given.");
        foreach (var c in cuts) c.Validate(blockCount);
        for (int i = 0; i < cuts.Count; i++)
            for (int j = i + 1; j < cuts.Count; j++)
                if (Overlaps(cuts[i], cuts[j]))
                    throw new PruningException($"Selector '{selector}': cuts {cuts[i]} and {cuts[j]} overlap.");
        long removed = cuts.Sum(c => (long)c.Length);
        if (removed > blockCount - 1)
            throw new PruningException($"Selector '{selector}': the cuts remove {removed} blocks but only {blockCount - 1} can be removed.");
    }
}
