using TorchSharp;

namespace ReplaceMe.Core.Runtime;

/// <summary>
/// Sets LibTorch's intra-op thread count (<c>torch.set_num_threads</c>) for a scope and restores the previous count on
/// dispose: <c>using (TorchThreads.Use(1)) { … }</c>. The count is process-wide, so scopes on different threads that
/// overlap see each other's setting; nest them, do not interleave them.
/// </summary>
/// <remarks>
/// On a CPU shared with other processes, fewer threads than cores are often faster: LibTorch's workers spin and
/// wait on each other when a core is taken away (docs/benchmarks.md, "Threads", has the measurement and its command).
/// </remarks>
public sealed class TorchThreads : IDisposable
{
    private bool _disposed;

    private TorchThreads(int threads, int previous)
    {
        Threads = threads;
        Previous = previous;
    }

    /// <summary>LibTorch's intra-op thread count now.</summary>
    public static int Current
    {
        get
        {
            TorchRuntime.EnsureLoaded();
            return torch.get_num_threads();
        }
    }

    /// <summary>The count this scope set.</summary>
    public int Threads { get; }

    /// <summary>The count before this scope, restored on dispose.</summary>
    public int Previous { get; }

    /// <summary>Sets the intra-op thread count to <paramref name="threads"/> until the returned scope is disposed.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is less than 1.</exception>
    public static TorchThreads Use(int threads)
    {
        if (threads < 1)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "The thread count must be at least 1.");
        TorchRuntime.EnsureLoaded();
        int previous = torch.get_num_threads();
        torch.set_num_threads(threads);
        return new TorchThreads(threads, previous);
    }

    /// <summary>Restores the previous thread count (once).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        torch.set_num_threads(Previous);
    }
}
