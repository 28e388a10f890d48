namespace ReplaceMe.Cli;

/// <summary>Small files the CLI writes (provenance and profile JSON), written whole or not at all.</summary>
internal static class CliFiles
{
    /// <summary>
    /// Writes <paramref name="text"/> to a temporary file beside <paramref name="path"/> and renames it into place, so
    /// that a full disk or a cancellation never leaves an empty or truncated file behind.
    /// </summary>
    /// <exception cref="IOException">Writing failed (nothing is left at <paramref name="path"/>'s temporary name).</exception>
    public static async Task WriteAllTextAtomicAsync(string path, string text, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            await File.WriteAllTextAsync(temp, text, cancellationToken).ConfigureAwait(false);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
