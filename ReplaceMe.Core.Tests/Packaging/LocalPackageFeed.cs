namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// Packs ReplaceMe.Core once per test run into a temporary folder feed, with a unique prerelease version so that a
/// package cached by an earlier run is never used instead. Build outputs go to a private artifacts folder, never to
/// the folders the running tests were loaded from.
/// </summary>
public sealed class LocalPackageFeed : IDisposable
{
    public LocalPackageFeed()
    {
        Root = Path.Combine(Path.GetTempPath(), "replaceme-feed-" + Guid.NewGuid().ToString("N"));
        Feed = Path.Combine(Root, "feed");
        Version = "0.1.0-ci." + DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        ProcessRunner.Run("dotnet",
            ["pack", Path.Combine(TestPaths.RepoRoot, "ReplaceMe.Core", "ReplaceMe.Core.csproj"), "-c", "Release",
             "--artifacts-path", Path.Combine(Root, "artifacts"), "-o", Feed, "-p:Version=" + Version],
            TestPaths.RepoRoot, TimeSpan.FromMinutes(10));
    }

    /// <summary>Temporary root (feed, artifacts, consumer projects).</summary>
    public string Root { get; }

    /// <summary>Folder holding ReplaceMe.Core.{Version}.nupkg.</summary>
    public string Feed { get; }

    /// <summary>The unique version packed for this run.</summary>
    public string Version { get; }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class PackagedLibraryCollection : ICollectionFixture<LocalPackageFeed>
{
    public const string Name = "Packaged ReplaceMe.Core";
}
