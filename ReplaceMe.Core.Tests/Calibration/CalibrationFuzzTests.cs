using System.Text;
using Parquet.Serialization;
using ReplaceMe.Core.Calibration;

namespace ReplaceMe.Core.Tests.Calibration;

/// <summary>
/// Seeded mutation fuzzing of the calibration readers (JSON Lines, plain text in both split modes, Parquet): each
/// mutated file reads or raises one of the library's typed exceptions (never NullReference, IndexOutOfRange,
/// OutOfMemory, Thrift or Snappy errors, or a hang); the seed and case are printed on failure. Also a Parquet file
/// with a corrupt page is one error naming the file and the row group.
/// </summary>
public class CalibrationFuzzTests
{
    private const int Seed = 20261132;
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);

    private static void Fuzz(string name, int iterations, int seed, Func<Random, byte[]> mutate, Func<string, CalibrationFileOptions?, IReadOnlyList<string>> read,
        string path, Func<Random, CalibrationFileOptions?> options)
    {
        var rng = new Random(seed);
        var failures = new List<string>();
        int ok = 0, refused = 0;
        for (int i = 0; i < iterations; i++)
        {
            var bytes = mutate(rng);
            File.WriteAllBytes(path, bytes);
            var caseOptions = options(rng);
            try
            {
                // A case that does not finish is reported (with its bytes) instead of hanging the suite.
                var work = Task.Run(() => read(path, caseOptions));
                if (!work.Wait(HangLimit))
                {
                    failures.Add($"seed {seed}, case {i}: still running after {HangLimit.TotalSeconds} s\n  {Convert.ToBase64String(bytes)}");
                    break;
                }
                ok++;
            }
            catch (AggregateException ae) when (ae.InnerException is ReplaceMeException)
            {
                refused++;
            }
            catch (AggregateException ae)
            {
                var ex = ae.InnerException!;
                failures.Add($"seed {seed}, case {i}: {ex.GetType().Name}: {ex.Message}\n  {Convert.ToBase64String(bytes[..Math.Min(bytes.Length, 300)])}");
            }
            catch (ReplaceMeException)
            {
                refused++;
            }
            catch (Exception ex)
            {
                failures.Add($"seed {seed}, case {i}: {ex.GetType().Name}: {ex.Message}\n  {Convert.ToBase64String(bytes[..Math.Min(bytes.Length, 300)])}");
            }
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} of {iterations} files escaped with other exceptions:\n" + string.Join("\n", failures.Take(5)));
        Assert.True(ok > iterations / 20 && refused > 10, $"{name}: the mutations should exercise both outcomes: {ok} read, {refused} refused.");
    }

    private static byte[] Mutate(byte[] original, Random rng, string alphabet)
    {
        var bytes = new List<byte>(original);
        for (int m = 1 + rng.Next(4); m > 0 && bytes.Count > 0; m--)
        {
            int at = rng.Next(bytes.Count);
            switch (rng.Next(5))
            {
                case 0: bytes.RemoveRange(at, Math.Min(bytes.Count - at, 1 + rng.Next(8))); break;
                case 1: bytes[at] = (byte)alphabet[rng.Next(alphabet.Length)]; break;
                case 2: bytes.Insert(at, (byte)alphabet[rng.Next(alphabet.Length)]); break;
                case 3: bytes[at] = (byte)rng.Next(256); break; // invalid UTF-8 too
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }
        }
        return [.. bytes];
    }

    [Fact]
    public void Mutated_jsonl_reads_or_raises_only_the_librarys_exceptions()
    {
        using var dir = TestPaths.NewTempDir();
        var original = Encoding.UTF8.GetBytes("""
            {"text": "Once upon a time there was a cat.", "id": 1}
            {"text": null}
            {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}], "text": "x"}

            {"text": "naïve café 😀\nsecond line", "meta": {"a": [1, 2, {"b": true}]}}
            """);
        Fuzz("jsonl", 3000, Seed, rng => Mutate(original, rng, "{}[]\",:\\n \u00e9 tx"), CalibrationFile.Read, dir.Combine("c.jsonl"),
            rng => new CalibrationFileOptions(Column: rng.Next(3) == 0 ? "conversations" : "text"));
    }

    [Fact]
    public void Mutated_text_reads_or_raises_only_the_librarys_exceptions()
    {
        using var dir = TestPaths.NewTempDir();
        var original = Encoding.UTF8.GetBytes("First story.\r\nStill first.\n\n\nSecond story — naïve 😀\r\rThird\n \n\t\nlast");
        Fuzz("txt", 2000, Seed + 1, rng => Mutate(original, rng, "\n\r \t\0a\u00e9"), CalibrationFile.Read, dir.Combine("c.txt"),
            rng => new CalibrationFileOptions(Split: rng.Next(2) == 0 ? TextSplit.Line : TextSplit.BlankLine));
    }

    private static byte[] SmallParquet(TempDir dir)
    {
        var path = dir.Combine("original.parquet");
        var rows = Enumerable.Range(0, 40).Select(i => new CalibrationFileTests.ParquetRow { Text = i % 7 == 3 ? null : $"story {i} naïve 😀", Id = i }).ToList();
        ParquetSerializer.SerializeAsync(rows, path, new Parquet.ParquetOptions { RowGroupSize = 16 }).GetAwaiter().GetResult();
        return File.ReadAllBytes(path);
    }

    [Fact]
    public void Mutated_parquet_reads_or_raises_only_the_librarys_exceptions()
    {
        using var dir = TestPaths.NewTempDir();
        var original = SmallParquet(dir);
        Fuzz("parquet", 2500, Seed + 2, rng =>
        {
            var bytes = (byte[])original.Clone();
            switch (rng.Next(4))
            {
                case 0: return bytes[..rng.Next(bytes.Length)];
                case 1: for (int k = 0; k < 1 + rng.Next(4); k++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256); return bytes;
                case 2:
                    int at = rng.Next(bytes.Length - 8);
                    for (int k = 0; k < 1 + rng.Next(8); k++) bytes[at + k] = 0xFF;
                    return bytes;
                default: bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8)); return bytes;
            }
        }, CalibrationFile.Read, dir.Combine("c.parquet"), rng => new CalibrationFileOptions(Column: "Text"));
    }

    [Fact]
    public void A_parquet_file_with_a_corrupt_page_is_one_error_naming_the_file_and_the_row_group()
    {
        using var dir = TestPaths.NewTempDir();
        var bytes = SmallParquet(dir);
        Assert.Equal(40 - 6, CalibrationFile.Read(dir.Combine("original.parquet"), new CalibrationFileOptions(Column: "Text")).Count);
        // The first column chunk's page header (Thrift) starts right after the 4-byte magic "PAR1".
        for (int k = 4; k < 24; k++) bytes[k] = 0xFF;
        var path = dir.Combine("corrupt.parquet");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<CheckpointFormatException>(() => CalibrationFile.Read(path, new CalibrationFileOptions(Column: "Text")));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.Contains("row group 0", ex.Message, StringComparison.Ordinal);
    }
}
