using System.Security.Cryptography;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Tests.Runtime;

public class TorchRuntimeTests
{
    private static string NuGetShim()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    [Fact]
    public void Torch_works_from_the_build_output_and_the_mode_matches_the_system()
    {
        TorchRuntime.EnsureLoaded();

        // Real numerical work, not just loading: matmul and least squares against hand-checkable values.
        using var scope = NewDisposeScope();
        var a = tensor(new double[] { 2, 0, 0, 4 }, [2, 2]);
        var b = tensor(new double[] { 2, 8 }, [2, 1]);
        var x = linalg.lstsq(a, b).Solution;
        Assert.Equal(1.0, x[0, 0].item<double>(), 12);
        Assert.Equal(2.0, x[1, 0].item<double>(), 12);
        Assert.Equal(20.0, a.matmul(a).sum().item<double>(), 12);

        if (OperatingSystem.IsLinux())
        {
            bool systemHasIt = TorchRuntime.SystemLibStdCxxHas("GLIBCXX_3.4.32");
            Assert.Equal(systemHasIt ? TorchLoadMode.Unmodified : TorchLoadMode.PatchedCopy, TorchRuntime.LoadMode);
            if (!systemHasIt)
            {
                Assert.NotNull(TorchRuntime.PatchedLibraryPath);
                Assert.DoesNotContain(".nuget", TorchRuntime.PatchedLibraryPath!, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void The_NuGet_cache_copy_is_never_modified()
    {
        var shim = NuGetShim();
        if (!File.Exists(shim)) return; // not a Linux NuGet layout: nothing to protect here
        var before = SHA256.HashData(File.ReadAllBytes(shim));
        TorchRuntime.EnsureLoaded();
        using var t = randn(8, 8);
        Assert.Equal(8, t.shape[0]);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(shim)));
        // The cache file still carries the strong version need (readable with our own walker).
        var bytes = File.ReadAllBytes(shim);
        Assert.Equal(ElfVersionPatcher.PatchResult.Patched, ElfVersionPatcher.MarkVersionWeak(bytes, "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void Patcher_sets_the_weak_bit_once_and_only_on_the_named_version()
    {
        var shim = NuGetShim();
        if (!File.Exists(shim)) return;
        var original = File.ReadAllBytes(shim);
        var patched = (byte[])original.Clone();
        Assert.Equal(ElfVersionPatcher.PatchResult.Patched, ElfVersionPatcher.MarkVersionWeak(patched, "GLIBCXX_3.4.32"));
        Assert.Equal(ElfVersionPatcher.PatchResult.AlreadyWeak, ElfVersionPatcher.MarkVersionWeak(patched, "GLIBCXX_3.4.32"));
        Assert.Equal(ElfVersionPatcher.PatchResult.VersionNotReferenced, ElfVersionPatcher.MarkVersionWeak(patched, "GLIBCXX_9.9.99"));

        // Exactly one byte differs, by exactly the VER_FLG_WEAK bit (0x2).
        var diffs = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Single(diffs);
        Assert.Equal(0x2, original[diffs[0]] ^ patched[diffs[0]]);
    }

    [Fact]
    public void Patcher_rejects_non_elf_input_with_a_clear_error()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.MarkVersionWeak(new byte[128], "GLIBCXX_3.4.32"));
        Assert.Contains("ELF", ex.Message, StringComparison.Ordinal);
    }
}
