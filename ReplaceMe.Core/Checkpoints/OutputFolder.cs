namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// An output folder built in a temporary sibling (<c>.&lt;name&gt;.tmp-&lt;random&gt;</c>) and moved into place by
/// <see cref="Commit"/>, so that a failed or cancelled run never leaves a half-written target.
/// Disposing without committing deletes the temporary folder.
/// </summary>
public sealed class OutputFolder : IDisposable
{
    private readonly bool _overwrite;
    private bool _committed;
    private bool _disposed;

    private OutputFolder(string targetPath, string tempPath, bool overwrite)
    {
        TargetPath = targetPath;
        Path = tempPath;
        _overwrite = overwrite;
    }

    /// <summary>The temporary folder to write into (becomes <see cref="TargetPath"/> on commit).</summary>
    public string Path { get; }

    /// <summary>The final folder's full path.</summary>
    public string TargetPath { get; }

    /// <summary>Starts building <paramref name="targetDir"/>.</summary>
    /// <param name="targetDir">Folder to produce; its parent is created when missing.</param>
    /// <param name="overwrite">Replace an existing folder on commit.</param>
    /// <exception cref="IOException">The target exists and <paramref name="overwrite"/> is false, or the target is a file.</exception>
    public static OutputFolder Create(string targetDir, bool overwrite)
    {
        ArgumentException.ThrowIfNullOrEmpty(targetDir);
        var target = System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(targetDir));
        var parent = System.IO.Path.GetDirectoryName(target);
        var name = System.IO.Path.GetFileName(target);
        if (string.IsNullOrEmpty(parent) || string.IsNullOrEmpty(name))
            throw new ArgumentException($"Output folder '{targetDir}' must name a folder below some parent, not a root.", nameof(targetDir));
        CheckTarget(target, overwrite);
        Directory.CreateDirectory(parent);
        var temp = System.IO.Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        return new OutputFolder(target, temp, overwrite);
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
        if (Directory.Exists(target) && !overwrite)
            throw new IOException($"Output folder '{target}' already exists; pass --overwrite (overwrite: true) to replace it.");
    }

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
}
