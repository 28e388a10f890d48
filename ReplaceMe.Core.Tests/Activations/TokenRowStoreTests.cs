using ReplaceMe.Core.Activations;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Activations;

public class TokenRowStoreTests
{
    public TokenRowStoreTests() => TorchRuntime.EnsureLoaded();

    /// <summary>Row r of the first matrix is (r, r+0.5, r+0.25); the second matrix holds −r, so rows stay aligned.</summary>
    private static void Offer(TokenRowStore store, int rows, int batches)
    {
        for (int b = 0; b < batches; b++)
        {
            int start = b * rows / batches, end = (b + 1) * rows / batches;
            var first = new float[(end - start) * 3];
            var second = new float[end - start];
            for (int r = start; r < end; r++)
            {
                first[(r - start) * 3] = r; first[(r - start) * 3 + 1] = r + 0.5f; first[(r - start) * 3 + 2] = r + 0.25f;
                second[r - start] = -r;
            }
            using var a = tensor(first, [end - start, 3]);
            using var c = tensor(second, [end - start, 1]);
            store.Add(a, c);
        }
    }

    private static List<float[]> ReadAll(TokenRowStore store, int batchSize, int? seed)
    {
        var rows = new List<float[]>();
        foreach (var batch in store.Batches(batchSize, CPU, seed))
        {
            var a = batch[0].data<float>().ToArray();
            var c = batch[1].data<float>().ToArray();
            for (int r = 0; r < batch[0].shape[0]; r++) rows.Add([a[r * 3], a[r * 3 + 1], a[r * 3 + 2], c[r]]);
            TokenRowStore.DisposeAll(batch);
        }
        return rows;
    }

    [Fact]
    public void Keeps_everything_in_order_below_the_cap()
    {
        using var store = new TokenRowStore([3, 1], rowCap: 1000, memoryBudgetBytes: 1 << 20, seed: 1);
        Offer(store, 250, 4);
        var rows = ReadAll(store, 64, null);
        Assert.Equal(250, rows.Count);
        for (int r = 0; r < 250; r++) Assert.Equal(new float[] { r, r + 0.5f, r + 0.25f, -r }, rows[r]);
        Assert.False(store.Subsampled);
        Assert.False(store.Spilled);
        Assert.Equal(1000 * 16, store.PeakMemoryBytes); // one RAM chunk, sized to the cap (smaller than a 4 MB chunk)
    }

    [Fact]
    public void Cap_is_respected_with_a_deterministic_uniform_subsample()
    {
        List<float[]> Sample(int seed)
        {
            using var store = new TokenRowStore([3, 1], rowCap: 200, memoryBudgetBytes: 1 << 20, seed);
            Offer(store, 4000, 7);
            Assert.Equal(200, store.RowsStored);
            Assert.Equal(4000, store.RowsSeen);
            Assert.True(store.Subsampled);
            return ReadAll(store, 50, null);
        }
        var a = Sample(11);
        var b = Sample(11);
        var c = Sample(12);
        Assert.Equal(a.Select(r => r[0]), b.Select(r => r[0]));
        Assert.NotEqual(a.Select(r => r[0]), c.Select(r => r[0]));
        // Every kept row is an offered row, intact and aligned across matrices, without duplicates.
        Assert.All(a, r => Assert.Equal(new float[] { r[0], r[0] + 0.5f, r[0] + 0.25f, -r[0] }, r));
        Assert.Equal(200, a.Select(r => r[0]).Distinct().Count());
        // Uniform: rows from late batches are as likely as early ones (mean index ≈ 2000, sd of the mean ≈ 82).
        Assert.InRange(a.Average(r => r[0]), 1600, 2400);
        Assert.InRange(a.Count(r => r[0] >= 2000), 70, 130);
    }

    [Fact]
    public void Shuffled_batches_are_a_seeded_permutation()
    {
        using var store = new TokenRowStore([3, 1], rowCap: 1000, memoryBudgetBytes: 1 << 20, seed: 1);
        Offer(store, 300, 3);
        var first = ReadAll(store, 64, 5).Select(r => r[0]).ToList();
        var again = ReadAll(store, 64, 5).Select(r => r[0]).ToList();
        var other = ReadAll(store, 64, 6).Select(r => r[0]).ToList();
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Equal(Enumerable.Range(0, 300).Select(i => (float)i), first.Order());
    }

    [Fact]
    public void Tiny_budget_spills_to_a_file_with_identical_rows_and_the_file_is_deleted()
    {
        using var dir = TestPaths.NewTempDir();
        using var memory = new TokenRowStore([3, 1], rowCap: 500, memoryBudgetBytes: 1 << 20, seed: 9);
        var spilling = new TokenRowStore([3, 1], rowCap: 500, memoryBudgetBytes: 16 * 40, seed: 9, spillDirectory: dir.Path);
        Offer(memory, 2000, 5);
        Offer(spilling, 2000, 5); // past the cap too: reservoir replacements land in the file as well

        Assert.True(spilling.Spilled);
        Assert.Equal(460, spilling.SpilledRows);
        Assert.Equal(40 * 16, spilling.PeakMemoryBytes);
        Assert.True(File.Exists(spilling.SpillPath));
        Assert.Equal(ReadAll(memory, 33, 4), ReadAll(spilling, 33, 4));
        Assert.Equal(ReadAll(memory, 500, null), ReadAll(spilling, 500, null));

        string path = spilling.SpillPath!;
        spilling.Dispose();
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Spill_file_is_deleted_when_an_exception_unwinds()
    {
        using var dir = TestPaths.NewTempDir();
        string? path = null;
        void Use()
        {
            using var store = new TokenRowStore([3, 1], rowCap: 100, memoryBudgetBytes: 0, seed: 1, spillDirectory: dir.Path);
            Offer(store, 10, 1);
            path = store.SpillPath;
            throw new InvalidOperationException("boom");
        }
        Assert.Throws<InvalidOperationException>(Use);
        Assert.NotNull(path);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Wrong_shapes_are_rejected()
    {
        using var store = new TokenRowStore([3, 1], rowCap: 10, memoryBudgetBytes: 1000, seed: 1);
        using var a = zeros(4, 3);
        using var b = zeros(5, 1);
        using var c = zeros(4, 2);
        Assert.Throws<ArgumentException>(() => store.Add(a, b));
        Assert.Throws<ArgumentException>(() => store.Add(a, c));
        Assert.Throws<ArgumentException>(() => store.Add(a));
        Assert.Throws<ArgumentException>(() => new TokenRowStore([3, 0], 10, 1000, 1));
    }
}
