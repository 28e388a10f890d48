using System.Globalization;

namespace ReplaceMe.Cli;

/// <summary>Byte sizes on the command line: <c>8GB</c>, <c>7.5GiB</c>, <c>512MB</c>, <c>4096</c> (bytes).</summary>
internal static class CliSizes
{
    private static readonly (string Suffix, double Factor)[] Units =
    [
        ("TIB", 1L << 40), ("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10),
        ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1),
    ];

    /// <summary>Parses a positive size; false for anything else.</summary>
    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        var s = (text ?? "").Trim().ToUpperInvariant();
        double factor = 1;
        foreach (var (suffix, f) in Units)
            if (s.EndsWith(suffix, StringComparison.Ordinal))
            {
                s = s[..^suffix.Length].Trim();
                factor = f;
                break;
            }
        if (!double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) || !(value > 0)) return false;
        double total = value * factor;
        if (total >= long.MaxValue || total < 1) return false;
        bytes = (long)total;
        return true;
    }

    /// <summary>A size in GB (10⁹ bytes) and GiB, e.g. "2.47 GB (2.30 GiB)".</summary>
    public static string Format(long bytes) =>
        string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:F2} GB ({bytes / (double)(1L << 30):F2} GiB)");
}
