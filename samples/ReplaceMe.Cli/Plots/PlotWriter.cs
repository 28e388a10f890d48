using ReplaceMe.Core.Evaluation;
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

    /// <summary>Loss curve of a gradient estimator: point i is the mean mini-batch loss over the i-th equal window of its steps.</summary>
    public static string LossCurve(IReadOnlyList<double> loss, string pngPath, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.Count == 0) throw new ArgumentException("The loss curve is empty.", nameof(loss));
        var xs = Enumerable.Range(1, loss.Count).Select(i => (double)i).ToArray();
        var plot = new Plot();
        var line = plot.Add.Scatter(xs, loss.ToArray());
        line.MarkerSize = 6;
        plot.Axes.Bottom.Label.Text = $"window of Adam steps (1/{loss.Count} of the run each)";
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
        plot.ShowLegend(Edge.Right); // outside the data area, so it cannot cover a bar
        plot.Title("Original vs pruned");
        return Save(plot, pngPath);
    }

    /// <summary>
    /// One metric across models as a dot plot: one row per model (original on top), a dot at the score and a line over
    /// its 95 % interval (<see cref="TaskScore.ConfidenceInterval"/>: Student's t on n − 1 degrees of freedom), the value and item count written beside it, and a dashed line at the
    /// original's score. Perplexities use a log axis (and an interval on the log scale), so one very bad model does not
    /// flatten the others. Model names
    /// label the rows; there is no legend to cover the data.
    /// </summary>
    /// <param name="metric">Axis title, e.g. "held-out stories ppl".</param>
    /// <param name="points">Per model (first = original): name, value, standard error (null = none), item count.</param>
    /// <param name="logScale">Plot log10 of the values (for perplexities); values must then be positive.</param>
    /// <param name="pngPath">Output PNG path.</param>
    /// <param name="percent">Show values (accuracies in [0, 1]) as percentages.</param>
    public static string ScoreDots(string metric, IReadOnlyList<ScorePoint> points, bool logScale, string pngPath, bool percent = false)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count == 0) throw new ArgumentException("A dot plot needs at least one model.", nameof(points));
        if (logScale && points.Any(p => !(p.Value > 0)))
            throw new ArgumentException("A log axis needs positive values.", nameof(points));
        double scale = percent ? 100 : 1;
        double X(double v) => logScale ? Math.Log10(Math.Max(v, 1e-12)) : v;
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        int rows = points.Count;
        for (int i = 0; i < rows; i++)
        {
            var p = points[i];
            double y = rows - 1 - i, v = p.Value * scale;
            // The library's 95 % interval (Student's t with n − 1 degrees of freedom; for perplexities on the log scale,
            // exp(log v ± q·SE/v), asymmetric and always positive, as intervals for perplexities should be).
            var interval = new TaskScore("", logScale ? "ppl" : "score", p.Value, !logScale, p.StdErr, p.Count).ConfidenceInterval();
            bool hasInterval = interval is not null && p.StdErr > 0;
            double left = interval is { } ci ? X(ci.Lower * scale) : X(v);
            double right = interval is { } cj ? X(cj.Upper * scale) : X(v);
            if (percent) (left, right) = (Math.Max(left, 0), Math.Min(right, 100)); // an accuracy interval stays in [0, 100] %
            var color = palette.GetColor(i);
            if (hasInterval)
            {
                var whisker = plot.Add.Line(left, y, right, y);
                whisker.LineColor = color;
                whisker.LineWidth = 2;
                foreach (var end in new[] { left, right })
                {
                    var cap = plot.Add.Line(end, y - 0.12, end, y + 0.12);
                    cap.LineColor = color;
                    cap.LineWidth = 2;
                }
            }
            plot.Add.Marker(X(v), y, MarkerShape.FilledCircle, 10, color);
            string fmt = percent ? "F1" : "F2";
            string label = v.ToString(fmt, System.Globalization.CultureInfo.InvariantCulture)
                + (p.StdErr is { } se ? " ± " + (se * scale).ToString(fmt, System.Globalization.CultureInfo.InvariantCulture) : "")
                + (p.Count > 0 ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"  (n={p.Count})") : "");
            var text = plot.Add.Text(label, X(v), y + 0.18);
            text.LabelFontSize = 13;
            text.LabelAlignment = Alignment.LowerCenter;
            lo = Math.Min(lo, left);
            hi = Math.Max(hi, right);
        }
        var reference = plot.Add.VerticalLine(X(points[0].Value * scale));
        reference.LineColor = Colors.Gray;
        reference.LinePattern = LinePattern.Dashed;

        double pad = Math.Max((hi - lo) * 0.12, logScale ? 0.05 : 1);
        plot.Axes.SetLimitsX(percent ? Math.Max(lo - pad, 0) : lo - pad, percent ? Math.Min(hi + pad, 100) : hi + pad);
        plot.Axes.SetLimitsY(-0.7, rows - 0.3);
        var yTicks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < rows; i++) yTicks.AddMajor(rows - 1 - i, points[i].Model);
        plot.Axes.Left.TickGenerator = yTicks;
        if (logScale) plot.Axes.Bottom.TickGenerator = LogTicks(lo - pad, hi + pad);
        plot.Axes.Bottom.Label.Text = metric + (logScale ? " (log scale)" : percent ? " (%)" : "");
        plot.Title($"{metric}: dot = score, bar = 95 % interval (t, n − 1 df); dashed = original");
        return Save(plot, pngPath);
    }

    /// <summary>Ticks at 1, 2, 5 × 10^k between two log10 positions, labelled with the value.</summary>
    private static ScottPlot.TickGenerators.NumericManual LogTicks(double log10Min, double log10Max)
    {
        var gen = new ScottPlot.TickGenerators.NumericManual();
        for (int k = (int)Math.Floor(log10Min); k <= (int)Math.Ceiling(log10Max); k++)
            foreach (var m in new[] { 1.0, 2.0, 5.0 })
            {
                double v = m * Math.Pow(10, k), x = Math.Log10(v);
                if (x >= log10Min && x <= log10Max)
                    gen.AddMajor(x, v.ToString(v >= 1 ? "#,0" : "0.###", System.Globalization.CultureInfo.InvariantCulture));
            }
        return gen;
    }

    /// <summary>Held-out perplexity against blocks removed, one line per estimator, with the original as n = 0 and,
    /// when given, the target as a dashed line (the curve of <c>replaceme sweep</c>).</summary>
    public static string PerplexityByBlocks(IReadOnlyList<KeyValuePair<string, IReadOnlyList<(int Blocks, double Perplexity)>>> series,
        double originalPerplexity, double? limit, string pngPath)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0) throw new ArgumentException("The sweep plot needs at least one estimator.", nameof(series));
        var plot = new Plot();
        int maxBlocks = 1;
        foreach (var (name, points) in series)
        {
            var xs = points.Select(p => (double)p.Blocks).Prepend(0.0).ToArray();
            var ys = points.Select(p => p.Perplexity).Prepend(originalPerplexity).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = name;
            line.MarkerSize = 7;
            maxBlocks = Math.Max(maxBlocks, points.Max(p => p.Blocks));
        }
        if (limit is { } l)
        {
            var h = plot.Add.HorizontalLine(l);
            h.LinePattern = LinePattern.Dashed;
            h.LineColor = Colors.Red;
            h.LegendText = "target";
        }
        plot.ShowLegend();
        plot.Axes.Bottom.Label.Text = "blocks removed n";
        plot.Axes.Left.Label.Text = "held-out perplexity";
        plot.Axes.Bottom.TickGenerator = IntegerTicks(0, maxBlocks);
        plot.Title("Perplexity vs blocks removed (one profile, best cut per n)");
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

/// <summary>One model's score for <see cref="PlotWriter.ScoreDots"/>.</summary>
/// <param name="Model">Row label.</param>
/// <param name="Value">The score.</param>
/// <param name="StdErr">Its standard error, or null.</param>
/// <param name="Count">Items (or documents) behind it; 0 = unknown.</param>
public sealed record ScorePoint(string Model, double Value, double? StdErr, int Count);
