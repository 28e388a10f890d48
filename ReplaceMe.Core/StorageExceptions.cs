namespace ReplaceMe.Core;

/// <summary>
/// A source file (a safetensors shard) changed — its size or modification time — while it was being read, so the
/// tensors read from it may mix two versions. The message names the file and what changed; nothing was written.
/// </summary>
public class SourceFileChangedException : CheckpointFormatException
{
    /// <summary>Creates the exception.</summary>
    public SourceFileChangedException() { }
    /// <summary>Creates the exception with a message.</summary>
    public SourceFileChangedException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public SourceFileChangedException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The file that changed (null when unknown).</summary>
    public string? FilePath { get; init; }
}

/// <summary>
/// The file system holding an output folder has less free space than the output needs (plus a safety margin);
/// raised before anything is written. The message names the folder, the bytes needed and the bytes free.
/// </summary>
public class InsufficientDiskSpaceException : ReplaceMeException
{
    /// <summary>Creates the exception.</summary>
    public InsufficientDiskSpaceException() { }
    /// <summary>Creates the exception with a message.</summary>
    public InsufficientDiskSpaceException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and a cause.</summary>
    public InsufficientDiskSpaceException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>The folder whose file system was checked.</summary>
    public string? Directory { get; init; }

    /// <summary>Bytes the output needs, margin included.</summary>
    public long RequiredBytes { get; init; }

    /// <summary>Bytes free for this user on that file system when checked.</summary>
    public long AvailableBytes { get; init; }
}
