using System.Globalization;

namespace ReplaceMe.Core.Runtime;

/// <summary>
/// Turns "this will not fit" into one clear error instead of a native abort, an OOM-killed process or a LibTorch
/// stack trace: an up-front check against the machine's memory where the size is known, and a translation of the
/// allocation failures TorchSharp and .NET raise.
/// </summary>
internal static class MemoryGuard
{
    /// <summary>
    /// Total memory available to this process on the CPU: physical memory, or the container (cgroup) limit when lower,
    /// as the .NET runtime sees it.
    /// </summary>
    public static long CpuBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>Human-readable size (decimal units, as disk sizes are quoted).</summary>
    public static string Describe(long bytes) => bytes switch
    {
        >= 1_000_000_000 => (bytes / 1e9).ToString("F1", CultureInfo.InvariantCulture) + " GB",
        >= 1_000_000 => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " bytes",
    };

    /// <summary>See <see cref="InsufficientModelMemoryException.IsAllocationFailure"/>.</summary>
    public static bool IsAllocationFailure(Exception ex) => InsufficientModelMemoryException.IsAllocationFailure(ex);

    /// <summary>The first line of an allocation failure's message (LibTorch appends a stack trace).</summary>
    public static string FirstLine(Exception ex)
    {
        var text = ex.Message;
        int cut = text.IndexOfAny(['\r', '\n']);
        return (cut < 0 ? text : text[..cut]).Trim();
    }
}
