using System.Buffers.Binary;
using ReplaceMe.Cli.Plots;
using ReplaceMe.Core.Selection;

namespace ReplaceMe.Core.Tests.Plots;

public class PlotWriterTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Asserts a real PNG: signature, IHDR dimensions as requested, and more than a blank image's bytes.</summary>
    internal static void AssertValidPng(string path, int minBytes = 8_000)
    {
        Assert.True(File.Exists(path), path);
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length >= minBytes, $"{path} is only {bytes.Length} bytes");
        Assert.Equal(PngSignature, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.Equal(900, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
        Assert.Equal(560, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
        var svg = File.ReadAllText(Path.ChangeExtension(path, ".svg"));
        Assert.Contains("<svg", svg, StringComparison.Ordinal);
    }

    private static DistanceProfile SampleProfile()
    {
        const int blocks = 6, maxN = 3;
        var rows = new double[maxN][];
        for (int n = 1; n <= maxN; n++)
        {
            rows[n - 1] = new double[blocks - 1];
            for (int s = 1; s <= blocks - 1; s++)
                rows[n - 1][s - 1] = s + n <= blocks ? 0.05 * n + 0.01 * Math.Abs(s - 3) : double.NaN;
        }
        return new DistanceProfile(blocks, DistanceMetric.Angular, DistanceTokens.LastToken, rows, 10);
    }

    [Fact]
    public void Heatmap_profile_loss_and_bars_are_real_pngs()
    {
        using var dir = TestPaths.NewTempDir();
        var profile = SampleProfile();
        AssertValidPng(PlotWriter.DistanceHeatmap(profile, dir.Combine("heatmap.png")));
        AssertValidPng(PlotWriter.DistanceProfileLine(profile, 2, [3], dir.Combine("profile.png")));
        AssertValidPng(PlotWriter.LossCurve([0.30, 0.2, 0.15, 0.12], dir.Combine("loss.png")));
        AssertValidPng(PlotWriter.RetentionBars(
            ["perplexity", "cloze"],
            [new("original", [2.0, 0.8]), new("lstsq", [3.3, 0.6])],
            dir.Combine("bars.png")));
    }

    [Fact]
    public void Score_dots_draw_intervals_on_a_log_axis_for_perplexities()
    {
        using var dir = TestPaths.NewTempDir();
        ScorePoint[] ppl = [new("original", 2.2, 0.07, 24), new("lstsq-1", 4.3, 0.23, 24), new("identity-2", 117.2, 84.6, 24)];
        AssertValidPng(PlotWriter.ScoreDots("held-out ppl", ppl, logScale: true, dir.Combine("ppl.png")));
        ScorePoint[] acc = [new("original", 0.54, 0.10, 24), new("lstsq-1", 0.375, null, 0)];
        AssertValidPng(PlotWriter.ScoreDots("cloze acc", acc, logScale: false, dir.Combine("acc.png"), percent: true));
        var svg = File.ReadAllText(dir.Combine("ppl.svg"));
        Assert.Contains("117.20 ± 84.60", svg, StringComparison.Ordinal); // value, error and count are written on the plot
        Assert.Contains("(n=24)", svg, StringComparison.Ordinal);
        Assert.Contains("log scale", svg, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => PlotWriter.ScoreDots("x", [new("m", 0, null, 1)], logScale: true, dir.Combine("bad.png")));
        Assert.Throws<ArgumentException>(() => PlotWriter.ScoreDots("x", [], logScale: false, dir.Combine("empty.png")));
    }

    [Fact]
    public void Bad_inputs_are_rejected_with_clear_messages()
    {
        using var dir = TestPaths.NewTempDir();
        Assert.Throws<ArgumentException>(() => PlotWriter.LossCurve([], dir.Combine("x.png")));
        var ex = Assert.Throws<ArgumentException>(() => PlotWriter.RetentionBars(["a", "b"], [new("m", [1.0])], dir.Combine("y.png")));
        Assert.Contains("'m' has 1 values for 2 tasks", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => PlotWriter.DistanceProfileLine(SampleProfile(), 4, [], dir.Combine("z.png")));
    }
}
