using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// An output folder built in a temporary sibling (<c>.&lt;name&gt;.tmp-&lt;random&gt;</c>) and moved into place by
/// <see cref="Commit"/>, so that a failed or cancelled run never leaves a half-written target.
/// Disposing without committing deletes the temporary folder.
/// <para>
/// It never loses user data. Every folder it writes carries a marker file (<see cref="MarkerFileName"/>), and
/// overwriting replaces only an empty folder or one with that marker. A target that is or contains the current
/// directory, or that is, contains or lies inside a protected path (the source model folder), is refused before
/// anything is written.
/// </para>
/// </summary>
public sealed partial class OutputFolder : IDisposable
{
    /// <summary>Hidden file that marks a folder written by ReplaceMe.Core (so that overwriting may replace it).</summary>
    public const string MarkerFileName = ".replaceme-output";

    private static readonly StringComparison PathComparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;

    private readonly bool _overwrite;
    private bool _committed;
    private bool _disposed;

    private OutputFolder(string targetPath, string tempPath, bool overwrite, IReadOnlyList<string> staleRemoved)
    {
        TargetPath = targetPath;
        Path = tempPath;
        _overwrite = overwrite;
        StaleFoldersRemoved = staleRemoved;
    }

    /// <summary>Hidden siblings of the target left by an earlier run of this library on this host whose process no longer
    /// exists, deleted when this folder was created (callers log them).</summary>
    public IReadOnlyList<string> StaleFoldersRemoved { get; }

    /// <summary>The temporary folder to write into (becomes <see cref="TargetPath"/> on commit).</summary>
    public string Path { get; }

    /// <summary>The final folder's full path.</summary>
    public string TargetPath { get; }

    /// <summary>Starts building <paramref name="targetDir"/>.</summary>
    /// <param name="targetDir">Folder to produce; its parent is created when missing.</param>
    /// <param name="overwrite">Replace an existing folder on commit (only an empty one, or one this library wrote).</param>
    /// <param name="protectedPaths">Folders and files the output must not be, contain, or (for folders) lie inside,
    /// e.g. the model folder being read.</param>
    /// <param name="logger">Receives one line per stale sibling removed (see <see cref="StaleFoldersRemoved"/>).</param>
    /// <exception cref="IOException">The target exists and <paramref name="overwrite"/> is false, the target is a
    /// file, it exists and was not written by this library, or it collides with the current directory or a protected
    /// path.</exception>
    public static OutputFolder Create(string targetDir, bool overwrite, IEnumerable<string>? protectedPaths = null, ILogger? logger = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetDir);
        var target = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(targetDir));
        var parent = System.IO.Path.GetDirectoryName(target);
        var name = System.IO.Path.GetFileName(target);
        if (string.IsNullOrEmpty(parent) || string.IsNullOrEmpty(name))
            throw new ArgumentException($"Output folder '{targetDir}' must name a folder below some parent, not a root.", nameof(targetDir));
        CheckCollisions(target, protectedPaths ?? []);
        CheckTarget(target, overwrite);
        Directory.CreateDirectory(parent);
        var stale = RemoveStaleSiblings(parent, name);
        if (logger is not null)
            foreach (var folder in stale) LogStaleRemoved(logger, folder);
        var temp = System.IO.Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        WriteMarker(temp);
        return new OutputFolder(target, temp, overwrite, stale);
    }

    /// <summary>Writes (or replaces) the marker naming this process as the folder's writer.</summary>
    private static void WriteMarker(string folder)
    {
        using var self = Process.GetCurrentProcess();
        var marker = new JsonObject
        {
            ["writer"] = "ReplaceMe.Core",
            ["created_utc"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
            ["host"] = Environment.MachineName,
            ["pid"] = Environment.ProcessId,
            ["process_start_utc"] = self.StartTime.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture),
        };
        File.WriteAllText(System.IO.Path.Combine(folder, MarkerFileName), marker.ToJsonString() + "\n");
    }

    /// <summary>
    /// Deletes <c>.&lt;name&gt;.tmp-*</c> and <c>.&lt;name&gt;.old-*</c> folders in <paramref name="parent"/> whose
    /// marker says this library wrote them on this host in a process that has ended. A folder without a readable marker,
    /// from another host, or from a live process (same pid and start time) is kept.
    /// </summary>
    private static List<string> RemoveStaleSiblings(string parent, string name)
    {
        var removed = new List<string>();
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateDirectories(parent, $".{name}.tmp-*")
                .Concat(Directory.EnumerateDirectories(parent, $".{name}.old-*")).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return removed;
        }
        foreach (var folder in candidates)
        {
            var info = new DirectoryInfo(folder);
            if (info.LinkTarget is not null) continue; // a link is never ours to delete
            if (!IsOrphanedByThisHost(System.IO.Path.Combine(folder, MarkerFileName))) continue;
            DeleteQuietly(folder);
            if (!Directory.Exists(folder)) removed.Add(folder);
        }
        return removed;
    }

    private static bool IsOrphanedByThisHost(string markerPath)
    {
        JsonObject? marker;
        try
        {
            var file = new FileInfo(markerPath);
            if (!file.Exists || file.LinkTarget is not null || file.Length > 4096) return false;
            marker = JsonNode.Parse(File.ReadAllText(markerPath)) as JsonObject;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return false;
        }
        if (marker is null
            || marker["writer"]?.GetValueKind() != JsonValueKind.String || (string?)marker["writer"] != "ReplaceMe.Core"
            || marker["host"]?.GetValueKind() != JsonValueKind.String || (string?)marker["host"] != Environment.MachineName
            || marker["pid"]?.GetValueKind() != JsonValueKind.Number || !marker["pid"]!.AsValue().TryGetValue(out int pid)
            || marker["process_start_utc"]?.GetValueKind() != JsonValueKind.String
            || !DateTime.TryParse((string?)marker["process_start_utc"], CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started))
            return false;
        return !IsRunning(pid, started.ToUniversalTime());
    }

    /// <summary>True when process <paramref name="pid"/> exists and started at <paramref name="startedUtc"/> (a reused pid
    /// belongs to another process, which started later).</summary>
    private static bool IsRunning(int pid, DateTime startedUtc)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return Math.Abs((process.StartTime.ToUniversalTime() - startedUtc).TotalSeconds) < 2;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return true; // cannot tell: keep the folder
        }
    }

    /// <summary>Moves the finished folder into place, replacing the old target only when overwriting was allowed.</summary>
    /// <exception cref="InvalidOperationException">Already committed or disposed.</exception>
    /// <exception cref="IOException">The target appeared meanwhile and overwriting is not allowed, or a move failed.</exception>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed) throw new InvalidOperationException($"Output folder '{TargetPath}' was already committed.");
        CheckTarget(TargetPath, _overwrite);
        if (Directory.Exists(TargetPath))
        {
            // Move the old folder aside first so that the target is never missing both versions on failure.
            var old = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(TargetPath)!,
                $".{System.IO.Path.GetFileName(TargetPath)}.old-{Guid.NewGuid():N}");
            Directory.Move(TargetPath, old);
            WriteMarker(old); // it is now this process's leftover until deleted below
            try
            {
                Directory.Move(Path, TargetPath);
            }
            catch
            {
                Directory.Move(old, TargetPath);
                throw;
            }
            DeleteQuietly(old);
        }
        else
        {
            Directory.Move(Path, TargetPath);
        }
        _committed = true;
    }

    /// <summary>Deletes the temporary folder unless <see cref="Commit"/> succeeded.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_committed) DeleteQuietly(Path);
    }

    private static void CheckTarget(string target, bool overwrite)
    {
        if (File.Exists(target))
            throw new IOException($"Output path '{target}' is an existing file; expected a folder.");
        if (!Directory.Exists(target)) return;
        if (!overwrite)
            throw new IOException($"Output folder '{target}' already exists; pass --overwrite (overwrite: true) to replace it.");
        if (!File.Exists(System.IO.Path.Combine(target, MarkerFileName)) && Directory.EnumerateFileSystemEntries(target).Any())
            throw new IOException(
                $"Output folder '{target}' exists and was not written by ReplaceMe.Core (it has no {MarkerFileName} marker), so " +
                "--overwrite will not replace it: choose another folder, or empty or remove this one yourself.");
    }

    /// <summary>Refuses a target that is or contains the current directory, or collides with a protected path.</summary>
    private static void CheckCollisions(string target, IEnumerable<string> protectedPaths)
    {
        var cwd = System.IO.Path.TrimEndingDirectorySeparator(Environment.CurrentDirectory);
        if (SameOrInside(cwd, target))
            throw new IOException($"Output folder '{target}' is or contains the current directory '{cwd}'; choose a new folder for the output.");
        foreach (var raw in protectedPaths)
        {
            var p = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(raw));
            if (SameOrInside(p, target))
                throw new IOException($"Output folder '{target}' is or contains '{p}', which this run reads; choose a folder outside it.");
            if (Directory.Exists(p) && SameOrInside(target, p))
                throw new IOException($"Output folder '{target}' lies inside the model folder '{p}', which this run reads; choose a folder outside it.");
        }
    }

    /// <summary>True when <paramref name="path"/> equals <paramref name="folder"/> or lies below it.</summary>
    private static bool SameOrInside(string path, string folder) =>
        string.Equals(path, folder, PathComparison)
        || path.StartsWith(folder.EndsWith(System.IO.Path.DirectorySeparatorChar) ? folder : folder + System.IO.Path.DirectorySeparatorChar, PathComparison);

    private static void DeleteQuietly(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden temp folder is harmless and named as such.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Removed {Folder}, left by an earlier run on this host that no longer exists")]
    private static partial void LogStaleRemoved(ILogger logger, string folder);
}
