using System.Globalization;
using System.Text.RegularExpressions;
using ReplaceMe.Core;
using ReplaceMe.Core.Checkpoints;

namespace ReplaceMe.Benchmarks;

/// <summary>Byte-for-byte comparison of a pruned checkpoint's untouched tensors with the source's, through positioned reads (no tensors).</summary>
internal static partial class CheckpointCompare
{
    /// <summary>
    /// Compares every output tensor except the down-projections (weight and bias) of the fold blocks with the source
    /// tensor it was renumbered from (removed blocks skipped). Returns whether all match and how many were compared.
    /// </summary>
    public static (bool Identical, int Count, long Bytes) UntouchedIdentical(string source, string output, IReadOnlyList<BlockCut> cuts, int sourceBlocks)
    {
        var kept = Enumerable.Range(0, sourceBlocks).Where(b => !cuts.Any(c => b >= c.Start && b < c.End)).ToArray(); // new index → source index
        using var src = SafetensorsReader.Open(source);
        using var dst = SafetensorsReader.Open(output);
        var a = new byte[8 << 20];
        var b = new byte[8 << 20];
        int count = 0;
        long bytes = 0;
        foreach (var name in dst.Names)
        {
            string from = name;
            var m = LayerName().Match(name);
            if (m.Success)
            {
                int block = kept[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)];
                if (m.Groups[2].Value.StartsWith("mlp.down_proj.", StringComparison.Ordinal) && FoldsInto(block, cuts, kept)) continue;
                from = $"model.layers.{block}.{m.Groups[2].Value}";
            }
            var (sf, so, sn) = src.Locate(from);
            var (df, dOff, dn) = dst.Locate(name);
            if (sn != dn || src.GetInfo(from).DType != dst.GetInfo(name).DType) return (false, count, bytes);
            using var sh = File.OpenHandle(sf);
            using var dh = File.OpenHandle(df);
            for (long done = 0; done < sn;)
            {
                int want = (int)Math.Min(a.Length, sn - done);
                if (RandomAccess.Read(sh, a.AsSpan(0, want), so + done) != want || RandomAccess.Read(dh, b.AsSpan(0, want), dOff + done) != want
                    || !a.AsSpan(0, want).SequenceEqual(b.AsSpan(0, want)))
                    return (false, count, bytes);
                done += want;
            }
            count++;
            bytes += sn;
        }
        return (true, count, bytes);
    }

    /// <summary>True when a cut's transform folds into source block <paramref name="block"/>: the nearest kept block before the cut.</summary>
    private static bool FoldsInto(int block, IReadOnlyList<BlockCut> cuts, int[] kept) =>
        cuts.Any(c => kept.Where(k => k < c.Start).DefaultIfEmpty(-1).Max() == block);

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerName();
}
