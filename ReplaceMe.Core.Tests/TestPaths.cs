namespace ReplaceMe.Core.Tests;

/// <summary>The repository root and temporary folders. (The real model comes from <see cref="Stories15MTestModel"/>, never from beside the checkout.)</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>A fresh empty temporary folder, deleted by the returned handle.</summary>
    public static TempDir NewTempDir() => new();

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ReplaceMe.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("ReplaceMe.sln not found above " + AppContext.BaseDirectory);
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "replaceme-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
