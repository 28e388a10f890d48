namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// Size and modification time of the file a path resolves to (a Hub cache holds symlinks into <c>blobs/</c>): recorded
/// when a source file is opened and compared again before and after each read, so that a file replaced or rewritten
/// while it is being read is reported instead of yielding tensors from two versions (or a fault on a shrunk mapping).
/// </summary>
internal readonly record struct FileStamp(long Length, DateTime LastWriteUtc)
{
    /// <summary>The stamp of <paramref name="path"/> now; length -1 when it no longer exists.</summary>
    public static FileStamp Of(string path)
    {
        FileSystemInfo info = new FileInfo(path);
        if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
        info.Refresh();
        return info.Exists ? new FileStamp(((FileInfo)info).Length, info.LastWriteTimeUtc) : new FileStamp(-1, default);
    }

    /// <summary>Throws <see cref="SourceFileChangedException"/> unless <paramref name="path"/> still has this stamp.</summary>
    /// <param name="path">The file.</param>
    /// <param name="while">What was going on, for the message (e.g. "tensor 'x' was read").</param>
    public void CheckUnchanged(string path, string @while)
    {
        var now = Of(path);
        if (now == this) return;
        string what = now.Length < 0 ? "it was deleted or renamed"
            : now.Length != Length ? $"its size went from {Length} to {now.Length} bytes"
            : $"its modification time went from {LastWriteUtc:o} to {now.LastWriteUtc:o}";
        throw new SourceFileChangedException($"Safetensors file '{path}' changed while {@while}: {what}. Run again on a stable source.") { FilePath = path };
    }

    public override string ToString() => $"{Length} bytes, modified {LastWriteUtc:o}";
}
