using ReplaceMe.Core.Tests.Modeling;
using ReplaceMe.Core.Tests.Surgery;

namespace ReplaceMe.Core.Tests.Cli;

public class InfoSizeTests
{
    [Fact]
    public void Info_prints_the_size_in_each_dtype_and_whether_it_fits_the_budget()
    {
        using var root = TestPaths.NewTempDir();
        var dir = PrunedCheckpointWriterTests.MakeSource(root, layers: 3);
        long parameters = TinyModels.ExpectedShapes(TinyModels.Llama(3)).Values.Sum(s => s.Aggregate(1L, (a, b) => a * b));
        double f32 = parameters * 4 / 1e9;
        var (code, output, err) = CliRun.Run("info", "--model", dir, "--max-memory", $"{parameters * 3}B");
        Assert.True(code == 0, err);
        Assert.Contains(parameters.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + " parameters", output);
        Assert.Contains("float32      " + f32.ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + " GB", output);
        Assert.Matches(@"float32 .* does NOT fit", output);   // 4 bytes each > 3 bytes each
        Assert.Matches(@"bfloat16 .* fits", output);
        Assert.DoesNotMatch(@"bfloat16 .* NOT", output);

        (code, _, err) = CliRun.Run("info", "--max-memory", "8GB");
        Assert.Equal(1, code);
        Assert.Contains("--max-memory needs --model", err);
        (code, _, err) = CliRun.Run("info", "--model", dir, "--max-memory", "lots");
        Assert.Equal(1, code);
        Assert.Contains("--max-memory must be a positive size", err);
    }
}
