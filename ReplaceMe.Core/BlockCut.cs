namespace ReplaceMe.Core;

/// <summary>
/// A run of consecutive blocks to remove: the half-open range <c>[Start, End)</c> of 0-based block indices.
/// The linear transform replacing it is folded into block <see cref="FoldBlock"/> = <c>Start - 1</c>.
/// </summary>
/// <param name="Start">First removed block (≥ 1: block 0 has no MLP before it).</param>
/// <param name="End">One past the last removed block (≤ block count: a cut may end at the last block).</param>
public readonly record struct BlockCut(int Start, int End)
{
    /// <summary>Number of removed blocks n = End − Start.</summary>
    public int Length => End - Start;

    /// <summary>The kept block whose MLP down-projection absorbs the transform (Start − 1).</summary>
    public int FoldBlock => Start - 1;

    /// <summary>Throws unless this is a valid cut of a model with <paramref name="blockCount"/> blocks.</summary>
    /// <exception cref="PruningException">The cut is empty, starts at block 0, or runs past the last block.</exception>
    public void Validate(int blockCount)
    {
        if (Length <= 0)
            throw new PruningException($"Cut [{Start}, {End}) is empty: End must be greater than Start.");
        if (Start < 1)
            throw new PruningException($"Cut [{Start}, {End}) starts at block 0: the first removed block must be ≥ 1 because the transform is folded into the MLP of block Start − 1.");
        if (End > blockCount)
            throw new PruningException($"Cut [{Start}, {End}) runs past the last block: the model has {blockCount} blocks (0..{blockCount - 1}).");
        if (Length >= blockCount)
            throw new PruningException($"Cut [{Start}, {End}) removes {Length} blocks but the model has only {blockCount}.");
    }

    /// <inheritdoc />
    public override string ToString() => $"[{Start}, {End})";
}
