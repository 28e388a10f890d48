using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace ReplaceMe.Core.Runtime;

/// <summary>
/// Makes TorchSharp's native library load on Linux systems whose <c>libstdc++</c> predates GCC 13
/// (Debian 12, Ubuntu 22.04, RHEL 9).
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> records a dependency on the symbol version <c>GLIBCXX_3.4.32</c>
/// only because GCC 13's <c>&lt;iostream&gt;</c> emits a link-time marker symbol that nothing calls. On a system
/// whose <c>libstdc++.so.6</c> lacks that version, <see cref="EnsureLoaded"/> copies the library to a private cache
/// folder (never touching the NuGet cache), marks that one version dependency weak in the copy, and hands the copy
/// to TorchSharp through the <see cref="AssemblyLoadContext.ResolvingUnmanagedDll"/> event, which fires only after the
/// normal load has failed. On every other system it does
/// nothing. Every public entry point of ReplaceMe.Core calls it; call it yourself before using <c>torch.*</c>
/// directly if ReplaceMe.Core has not been used yet in the process.
/// </remarks>
public static partial class TorchRuntime
{
    private const string MissingVersion = "GLIBCXX_3.4.32";
    private const string NativeName = "LibTorchSharp";
    private const string NativeFile = "libLibTorchSharp.so";
    private static readonly object Gate = new();
    private static bool _resolverInstalled;
    private static bool _initialized;
    private static IntPtr _patchedHandle;
    private static ILogger _logger = NullLogger.Instance;

    /// <summary>What <see cref="EnsureLoaded"/> did on this process.</summary>
    public static TorchLoadMode LoadMode { get; private set; } = TorchLoadMode.NotYetLoaded;

    /// <summary>Path of the patched private copy when <see cref="LoadMode"/> is <see cref="TorchLoadMode.PatchedCopy"/>.</summary>
    public static string? PatchedLibraryPath { get; private set; }

#pragma warning disable CA2255 // A library module initializer is intended here: it installs the loader hook before any torch call.
    [ModuleInitializer]
    internal static void InstallResolverEarly() => InstallResolver();
#pragma warning restore CA2255

    /// <summary>
    /// Ensures TorchSharp's CPU backend is loaded, applying the libstdc++ compatibility fix when (and only when)
    /// the system needs it. Safe to call many times and from any thread.
    /// </summary>
    /// <param name="logger">Receives one line that says what was done.</param>
    /// <exception cref="TorchLoadException">The native library could not be loaded, with the reason.</exception>
    public static void EnsureLoaded(ILogger? logger = null)
    {
        lock (Gate)
        {
            if (_initialized) return;
            if (logger is not null) _logger = logger;
            InstallResolver();
            try
            {
                torch.InitializeDeviceType(DeviceType.CPU);
            }
            catch (Exception ex) when (ex is TypeInitializationException or NotSupportedException or InvalidOperationException or DllNotFoundException)
            {
                throw new TorchLoadException(
                    $"TorchSharp's native backend did not load ({LoadMode}). Reference TorchSharp-cpu (or TorchSharp-cuda-linux/-windows) " +
                    $"version 0.107.x in the application. Cause: {ex.GetBaseException().Message}", ex);
            }
            if (LoadMode == TorchLoadMode.NotYetLoaded) LoadMode = TorchLoadMode.Unmodified;
            if (LoadMode == TorchLoadMode.PatchedCopy)
                LogPatched(_logger, MissingVersion, PatchedLibraryPath ?? "?");
            else
                LogUnmodified(_logger);
            _initialized = true;
        }
    }

    private static void InstallResolver()
    {
        lock (Gate)
        {
            if (_resolverInstalled) return;
            _resolverInstalled = true;
            if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return;
            // TorchSharp probes with NativeLibrary.TryLoad(name, assembly), which skips DllImportResolver callbacks
            // but, like [DllImport], raises ResolvingUnmanagedDll once default probing has failed.
            var context = AssemblyLoadContext.GetLoadContext(typeof(torch).Assembly) ?? AssemblyLoadContext.Default;
            context.ResolvingUnmanagedDll += (_, name) => Resolve(name);
        }
    }

    private static IntPtr Resolve(string libraryName)
    {
        if (libraryName != NativeName && libraryName != NativeFile) return IntPtr.Zero;
        lock (Gate)
        {
            if (_patchedHandle != IntPtr.Zero) return _patchedHandle;
            if (LoadMode != TorchLoadMode.NotYetLoaded) return IntPtr.Zero;
            if (SystemLibStdCxxHas(MissingVersion))
            {
                LoadMode = TorchLoadMode.Unmodified;
                return IntPtr.Zero;
            }
            try
            {
                _patchedHandle = LoadPatchedCopy();
                LoadMode = _patchedHandle == IntPtr.Zero ? TorchLoadMode.Unmodified : TorchLoadMode.PatchedCopy;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException or DllNotFoundException or BadImageFormatException)
            {
                LoadMode = TorchLoadMode.PatchFailed;
                LogPatchFailed(_logger, ex.Message);
            }
            return _patchedHandle;
        }
    }

    /// <summary>True when the process's <c>libstdc++.so.6</c> defines <paramref name="version"/> (or cannot be inspected).</summary>
    internal static bool SystemLibStdCxxHas(string version)
    {
        if (!NativeLibrary.TryLoad("libstdc++.so.6", out _)) return true;
        string? path = null;
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int i = line.IndexOf('/', StringComparison.Ordinal);
            if (i >= 0 && line.Contains("libstdc++.so", StringComparison.Ordinal)) { path = line[i..]; break; }
        }
        if (path is null || !File.Exists(path)) return true;
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        return File.ReadAllBytes(path).AsSpan().IndexOf(needle) >= 0;
    }

    private static IntPtr LoadPatchedCopy()
    {
        string original = FindNative(NativeFile)
            ?? throw new DllNotFoundException($"{NativeFile} was not found next to TorchSharp.dll, in the application's native search folders, or in the NuGet cache.");
        string originalDir = Path.GetDirectoryName(original)!;

        var bytes = File.ReadAllBytes(original);
        var hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        if (ElfVersionPatcher.MarkVersionWeak(bytes, MissingVersion) == ElfVersionPatcher.PatchResult.VersionNotReferenced)
            return IntPtr.Zero; // this build of the shim does not need the version: nothing to fix

        string dir = Path.Combine(CacheRoot(), hash);
        string target = Path.Combine(dir, NativeFile);
        if (!File.Exists(target))
        {
            Directory.CreateDirectory(dir);
            string tmp = target + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, target, overwrite: true);
        }

        // The copy lives in another folder, so its $ORIGIN runpath no longer finds LibTorch: load the libraries it
        // needs first, by full path, so the loader matches them by soname. A library already mapped (TorchSharp
        // loads torch_cpu before the shim; notebooks load it from the NuGet cache) must not be loaded a second time
        // from another folder: two copies of libtorch_cpu register the same operators and abort the process.
        var mapped = MappedLibraries();
        string depsDir = mapped.TryGetValue("libtorch_cpu.so", out var loadedCpu) ? Path.GetDirectoryName(loadedCpu)!
            : File.Exists(Path.Combine(originalDir, "libtorch_cpu.so")) ? originalDir
            : FindNativeDir("libtorch_cpu.so") ?? originalDir;
        foreach (var dep in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
        {
            if (mapped.ContainsKey(dep)) continue;
            var p = Path.Combine(depsDir, dep);
            if (File.Exists(p)) NativeLibrary.Load(p);
        }
        PatchedLibraryPath = target;
        return NativeLibrary.Load(target);
    }

    /// <summary>File name → full path of every shared object mapped into this process (from /proc/self/maps).</summary>
    private static Dictionary<string, string> MappedLibraries()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int i = line.IndexOf('/', StringComparison.Ordinal);
            if (i < 0 || !line.Contains(".so", StringComparison.Ordinal)) continue;
            var path = line[i..];
            result.TryAdd(Path.GetFileName(path), path);
        }
        return result;
    }

    private static string CacheRoot()
    {
        var overrideDir = Environment.GetEnvironmentVariable("REPLACEME_NATIVE_CACHE");
        if (!string.IsNullOrEmpty(overrideDir)) return overrideDir;
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = !string.IsNullOrEmpty(xdg) ? xdg : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache") : Path.GetTempPath();
        return Path.Combine(root, "replaceme", "native");
    }

    private static string? FindNative(string file) => FindNativeDir(file) is { } d ? Path.Combine(d, file) : null;

    private static string? FindNativeDir(string file)
    {
        foreach (var dir in CandidateDirs())
            if (File.Exists(Path.Combine(dir, file))) return dir;
        return null;
    }

    private static IEnumerable<string> CandidateDirs()
    {
        const string rid = "linux-x64";
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirs)
            foreach (var d in searchDirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)) yield return d;
        var torchDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir))
        {
            yield return torchDir;
            yield return Path.Combine(torchDir, "runtimes", rid, "native");
        }
        yield return AppContext.BaseDirectory;
        yield return Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native");

        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var version = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0];
        if (version is not null) yield return Path.Combine(packages, "torchsharp", version, "runtimes", rid, "native");
        var libtorch = Path.Combine(packages, "libtorch-cpu-" + rid);
        if (Directory.Exists(libtorch))
            foreach (var v in Directory.GetDirectories(libtorch).OrderByDescending(x => x, StringComparer.Ordinal))
                yield return Path.Combine(v, "runtimes", rid, "native");
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "System libstdc++ lacks {Version}: loaded TorchSharp's native shim from a private copy with that version need marked weak ({Path}); the NuGet cache is untouched")]
    private static partial void LogPatched(ILogger logger, string version, string path);

    [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "TorchSharp's native backend loaded unmodified")]
    private static partial void LogUnmodified(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "Could not prepare the patched copy of TorchSharp's native shim: {Reason}")]
    private static partial void LogPatchFailed(ILogger logger, string reason);
}

/// <summary>How TorchSharp's native shim was loaded in this process.</summary>
public enum TorchLoadMode
{
    /// <summary>No torch call has happened yet.</summary>
    NotYetLoaded,
    /// <summary>The system's libstdc++ is new enough; TorchSharp loaded its own files unchanged.</summary>
    Unmodified,
    /// <summary>A private copy with the <c>GLIBCXX_3.4.32</c> need marked weak was loaded.</summary>
    PatchedCopy,
    /// <summary>The fix was needed but could not be applied (see the log).</summary>
    PatchFailed,
}
