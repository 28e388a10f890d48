using System.Globalization;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// The free-space check made before an output folder is written: the output's expected size plus a margin
/// (<see cref="MarginFor"/>) must fit in the space free to this user on the target's file system (<c>statvfs</c>
/// through <see cref="DriveInfo.AvailableFreeSpace"/>), or <see cref="InsufficientDiskSpaceException"/> is thrown
/// before anything is created. The temporary sibling that <see cref="OutputFolder"/> builds lies on the same file
/// system, and a replaced folder is removed only after the new one is in place, so the whole output must fit.
/// </summary>
internal static class DiskSpace
{
    private static readonly AsyncLocal<Func<string, long>?> Probe = new();

    /// <summary>Bytes added to an expected size: 64 MiB plus 1 % (file-system blocks, metadata, estimates of small files).</summary>
    public static long MarginFor(long bytes) => (64L << 20) + bytes / 100;

    /// <summary>Bytes free to this user on the file system holding <paramref name="directory"/> (or its nearest existing parent).</summary>
    public static long FreeBytes(string directory)
    {
        var existing = NearestExisting(directory);
        return Probe.Value is { } probe ? probe(existing) : new DriveInfo(existing).AvailableFreeSpace;
    }

    /// <summary>Throws <see cref="InsufficientDiskSpaceException"/> when <paramref name="expectedBytes"/> plus the margin do
    /// not fit on the file system of <paramref name="targetDir"/>.</summary>
    /// <param name="targetDir">The output folder (need not exist yet).</param>
    /// <param name="expectedBytes">What will be written.</param>
    /// <param name="what">What is being written, for the message (e.g. "the pruned checkpoint").</param>
    public static void EnsureFits(string targetDir, long expectedBytes, string what)
    {
        var full = Path.GetFullPath(targetDir);
        long required = expectedBytes + MarginFor(expectedBytes);
        long free;
        try
        {
            free = FreeBytes(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return; // the file system cannot say: writing will fail cleanly (OutputFolder) if it really is full
        }
        if (free >= required) return;
        var inv = CultureInfo.InvariantCulture;
        throw new InsufficientDiskSpaceException(string.Create(inv,
            $"Not enough disk space for {what} in '{full}': it needs {required:N0} bytes ({Gb(expectedBytes)} plus a {Gb(required - expectedBytes)} margin) but the file system has {free:N0} bytes ({Gb(free)}) free. Free some space or choose another folder; nothing was written."))
        {
            Directory = full, RequiredBytes = required, AvailableBytes = free,
        };
    }

    private static string Gb(long bytes) => (bytes / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " GB";

    private static string NearestExisting(string path)
    {
        var dir = new DirectoryInfo(path);
        while (dir is not null && !dir.Exists) dir = dir.Parent;
        return dir?.FullName ?? Path.GetPathRoot(path) ?? path;
    }

    /// <summary>Test seam: until the returned scope is disposed, free space on this async flow comes from <paramref name="probe"/>.</summary>
    internal static IDisposable UseProbe(Func<string, long> probe)
    {
        var previous = Probe.Value;
        Probe.Value = probe;
        return new Restore(previous);
    }

    private sealed class Restore(Func<string, long>? previous) : IDisposable
    {
        public void Dispose() => Probe.Value = previous;
    }
}
