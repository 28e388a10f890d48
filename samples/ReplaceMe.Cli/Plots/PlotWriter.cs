using ReplaceMe.Core.Selection;
using ScottPlot;

namespace ReplaceMe.Cli.Plots;

/// <summary>
/// Writes the pictures people look at: the distance heatmap (start block × n, as in the paper), the distance profile
/// for one n with the chosen cut marked, an estimator's loss curve, and before/after retention bars. Each method
/// writes a PNG and, next to it, an SVG, and returns the PNG path.
/// </summary>
public static class PlotWriter
{
    private const int Width = 900, Height = 560;

    /// <summary>Heatmap of the distance for every cut start (x) and length n (y); empty cells where a cut does not fit.</summary>
    public static string DistanceHeatmap(DistanceProfile profile, string pngPath, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(profile);
        int starts = profile.BlockCount - 1, lengths = profile.MaxLength;
        // ScottPlot draws row 0 at the top: put n = MaxLength first so n grows upwards.
        var data = new double[lengths, starts];
        for (int n = 1; n <= lengths; n++)
            for (int s = 1; s <= starts; s++)
                data[lengths - n, s - 1] = profile[s, n];
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(data);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.NaNCellColor = Colors.White;
        // Position is the rectangle of cell centres: one cell per integer start and n. With a single row or column
        // there is no spacing to infer, so give the cell edges instead.
        if (starts > 1 && lengths > 1) heatmap.Position = new CoordinateRect(1, starts, 1, lengths);
        else heatmap.Extent = new CoordinateRect(0.5, starts + 0.5, 0.5, lengths + 0.5);
        plot.Add.ColorBar(heatmap).Label = profile.Metric == DistanceMetric.Angular ? "angular distance" : "1 − cos";
        plot.Axes.Bottom.Label.Text = "first removed block s (0-based)";
        plot.Axes.Left.Label.Text = "blocks removed n";
        plot.Axes.Bottom.TickGenerator = IntegerTicks(1, starts);
        plot.Axes.Left.TickGenerator = IntegerTicks(1, lengths);
        plot.Title(title ?? $"Distance between the outputs of blocks s−1 and s+n−1 ({profile.Sequences} sequences)");
        return Save(plot, pngPath);
    }

    /// <summary>Distance profile for cuts of length <paramref name="length"/>, with the chosen starts marked.</summary>
    public static string DistanceProfileLine(DistanceProfile profile, int length, IEnumerable<int> chosenStarts, string pngPath)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(chosenStarts);
        var values = profile.ForLength(length);
        var xs = new List<double>();
        var ys = new List<double>();
        for (int s = 1; s <= values.Count; s++)
        {
            if (double.IsNaN(values[s - 1])) continue;
            xs.Add(s);
            ys.Add(values[s - 1]);
        }
        var plot = new Plot();
        var line = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
        line.LegendText = $"n = {length}";
        line.MarkerSize = 7;
        foreach (var s in chosenStarts)
        {
            var v = plot.Add.VerticalLine(s);
            v.LineColor = Colors.Red;
            v.LinePattern = LinePattern.Dashed;
            v.LegendText = $"chosen cut [{s}, {s + length})";
        }
        plot.ShowLegend();
        plot.Axes.Bottom.Label.Text = "first removed block s";
        plot.Axes.Left.Label.Text = profile.Metric == DistanceMetric.Angular ? "angular distance" : "1 − cos";
        plot.Axes.Bottom.TickGenerator = IntegerTicks(1, values.Count);
        plot.Title($"Distance profile for n = {length}");
        return Save(plot, pngPath);
    }

    /// <summary>Per-epoch loss of a gradient estimator.</summary>
    public static string LossCurve(IReadOnlyList<double> loss, string pngPath, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.Count == 0) throw new ArgumentException("The loss curve is empty.", nameof(loss));
        var xs = Enumerable.Range(1, loss.Count).Select(i => (double)i).ToArray();
        var plot = new Plot();
        var line = plot.Add.Scatter(xs, loss.ToArray());
        line.MarkerSize = 6;
        plot.Axes.Bottom.Label.Text = "epoch";
        plot.Axes.Left.Label.Text = "loss (1 − cos)";
        plot.Title(title ?? "Cosine estimator loss");
        return Save(plot, pngPath);
    }

    /// <summary>Grouped bars: one group per task, one bar per model (original first), values in the task's unit.</summary>
    /// <param name="tasks">Task names (x groups).</param>
    /// <param name="series">Model name → one value per task.</param>
    /// <param name="pngPath">Output PNG path.</param>
    /// <param name="yLabel">Axis label (e.g. "score" or "% of original").</param>
    public static string RetentionBars(IReadOnlyList<string> tasks, IReadOnlyList<KeyValuePair<string, IReadOnlyList<double>>> series, string pngPath, string yLabel = "score")
    {
        ArgumentNullException.ThrowIfNull(tasks);
        ArgumentNullException.ThrowIfNull(series);
        if (tasks.Count == 0 || series.Count == 0) throw new ArgumentException("Retention bars need at least one task and one model.");
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double groupWidth = 0.8, barWidth = groupWidth / series.Count;
        for (int m = 0; m < series.Count; m++)
        {
            var values = series[m].Value;
            if (values.Count != tasks.Count)
                throw new ArgumentException($"Model '{series[m].Key}' has {values.Count} values for {tasks.Count} tasks.", nameof(series));
            var bars = new List<Bar>();
            for (int t = 0; t < tasks.Count; t++)
                bars.Add(new Bar { Position = t - groupWidth / 2 + barWidth * (m + 0.5), Value = values[t], Size = barWidth * 0.95, FillColor = palette.GetColor(m) });
            plot.Add.Bars(bars);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = series[m].Key, FillColor = palette.GetColor(m) });
        }
        var ticks = tasks.Select((name, i) => new Tick(i, name)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.Left.Label.Text = yLabel;
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend();
        plot.Title("Original vs pruned");
        return Save(plot, pngPath);
    }

    private static ScottPlot.TickGenerators.NumericManual IntegerTicks(int first, int last)
    {
        var gen = new ScottPlot.TickGenerators.NumericManual();
        int step = Math.Max(1, (last - first + 1) / 16);
        for (int i = first; i <= last; i += step) gen.AddMajor(i, i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return gen;
    }

    private static string Save(Plot plot, string pngPath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(pngPath));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        plot.SavePng(pngPath, Width, Height);
        plot.SaveSvg(Path.ChangeExtension(pngPath, ".svg"), Width, Height);
        return pngPath;
    }
}
