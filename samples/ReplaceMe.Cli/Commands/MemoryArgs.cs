using System.CommandLine;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Pruning;

namespace ReplaceMe.Cli.Commands;

/// <summary>
/// <c>--max-memory SIZE</c>, <c>--streaming</c> and <c>--spill-dir DIR</c> of the verbs that run a model (prune, profile,
/// evaluate): the model is streamed block by block when forced or when its float32 weights do not fit the budget
/// (docs/streaming.md).
/// </summary>
internal sealed class MemoryArgs
{
    /// <summary>Bytes kept back in a streamed run for .NET, LibTorch and transient tensors.</summary>
    private const long RuntimeReserveBytes = 512L << 20;

    /// <summary>Size of one LM-head chunk a streamed model reads (<c>StreamedDecoderModel.HeadChunkBytes</c>' default).</summary>
    private const long HeadChunkBytes = 64L << 20;

    public Option<string?> MaxMemory { get; } = new("--max-memory")
    {
        Description = "Memory budget such as 8GB or 7.5GiB: the model is streamed block by block when its weights do not fit 60% of it, and a streamed run sizes its buffers to it",
    };

    public Option<bool> Streaming { get; } = new("--streaming") { Description = "Stream the model block by block (at most one block's weights in memory) even if it fits" };

    public Option<string?> SpillDir { get; } = new("--spill-dir")
    {
        Description = "Folder for the hidden states that exceed the budget in a streamed run (default: the system's temporary folder; nothing stays behind)",
    };

    public MemoryArgs() =>
        CliOptions.Require(MaxMemory, s => s is null || CliSizes.TryParse(s, out _), "--max-memory must be a positive size such as 8GB, 7.5GiB or 512MB.");

    /// <summary>Adds the options; <paramref name="spill"/> false leaves out --spill-dir (a verb without block-major passes).</summary>
    public void AddTo(Command command, bool spill = true)
    {
        command.Options.Add(MaxMemory);
        command.Options.Add(Streaming);
        if (spill) command.Options.Add(SpillDir);
    }

    /// <summary>The parsed budget in bytes, or null.</summary>
    public long? Budget(ParseResult parse) =>
        parse.GetValue(MaxMemory) is string s && CliSizes.TryParse(s, out long bytes) ? bytes : null;

    /// <summary>In memory or streamed, and why (<see cref="TransformerLoader.Choose"/>); without --max-memory or
    /// --streaming the model is loaded in memory as before.</summary>
    /// <exception cref="ArgumentException">--spill-dir was given but the model is loaded in memory (it would be unused).</exception>
    public (ModelResidency Residency, string Reason) Choose(ParseResult parse, string modelDir)
    {
        var (residency, reason) = parse.GetValue(Streaming) ? (ModelResidency.Streamed, "--streaming")
            : Budget(parse) is long budget ? (TransformerLoader.Choose(modelDir, null, ModelResidency.Auto, budget, out var why), why)
            : (ModelResidency.InMemory, "no --max-memory");
        if (residency != ModelResidency.Streamed && parse.GetResult(SpillDir) is not null)
            throw new ArgumentException($"--spill-dir is used only when the model is streamed, but it is loaded in memory ({reason}); drop --spill-dir or add --streaming.");
        return (residency, reason);
    }

    /// <summary>
    /// The pruning options of a streamed run: block-major passes; with a budget, what is left after one block in float32
    /// (twice: resident and being converted), the float64 fold of a down-projection, the pinned down-projection with its
    /// saved copy and a runtime reserve goes one third to the hidden-state store and one third to the profile pass's
    /// candidate statistics (the rest is headroom), and the estimator's memory budget is capped at that third too; without
    /// a budget the library defaults stay.
    /// </summary>
    public PruningOptions Apply(ParseResult parse, PruningOptions options, StreamedDecoderModel model, TextWriter output)
    {
        options = options with { BlockMajor = true, SpillDirectory = parse.GetValue(SpillDir) };
        if (Budget(parse) is not long budget) return options;
        var c = model.SourceConfig;
        long downProj = (long)c.HiddenSize * c.IntermediateSize;
        long reserve = 2 * model.BlockBytes + 2 * downProj * sizeof(double) + 2 * downProj * sizeof(float) + RuntimeReserveBytes;
        long left = Math.Max(0, budget - reserve);
        if (left == 0)
            output.WriteLine($"warning: --max-memory {CliSizes.Format(budget)} is below one block's working set ({CliSizes.Format(reserve)}): hidden states spill to disk and every cut is fitted in a pass of its own");
        // The estimator's own budget (the cosine fit's rows and L-BFGS state, live during a fit pass beside the hidden
        // states) is the statistics' third, never more than the library default: --max-memory bounds it too.
        return options with
        {
            HiddenStateBudgetBytes = left / 3, StatisticsBudgetBytes = left / 3,
            MemoryBudgetBytes = Math.Min(options.MemoryBudgetBytes, left / 3),
        };
    }

    /// <summary>
    /// The evaluation options of a streamed model (block-major, docs/streaming.md): with a budget, what is left after one
    /// block in float32 (twice), the LM-head chunk with the logits of one batch against it (float32 and float64) and a
    /// runtime reserve goes half to the hidden-state store; the spill folder as given.
    /// </summary>
    public static EvaluationOptions ApplyEvaluation(long? budget, string? spillDir, EvaluationOptions options, StreamedDecoderModel model, TextWriter output)
    {
        options = options with { SpillDirectory = spillDir };
        if (budget is not long bytes) return options;
        long headRows = Math.Max(1, HeadChunkBytes / ((long)model.SourceConfig.HiddenSize * sizeof(float)));
        long positions = (long)options.BatchSize * options.MaxLength;
        long reserve = 2 * model.BlockBytes + HeadChunkBytes + positions * headRows * (sizeof(float) + sizeof(double)) + RuntimeReserveBytes;
        long left = Math.Max(0, bytes - reserve);
        if (left == 0)
            output.WriteLine($"warning: --max-memory {CliSizes.Format(bytes)} is below a streamed evaluation's working set ({CliSizes.Format(reserve)}): hidden states spill to disk");
        return options with { HiddenStateBudgetBytes = left / 2 };
    }
}

/// <summary>Prints the per-block lines of a block-major pass ("block 17/32: calibration pass, ETA 3m10s") and the per-chunk
/// lines of a streamed evaluation's LM head ("LM head chunk 3/32: perplexity of wiki, ETA 40s") as they come.</summary>
internal sealed class BlockProgressPrinter(TextWriter output) : IProgress<ReplaceMe.Core.PruningProgress>
{
    public void Report(ReplaceMe.Core.PruningProgress value)
    {
        if (value.Message is { } m && (m.StartsWith("block ", StringComparison.Ordinal) || m.StartsWith("LM head chunk ", StringComparison.Ordinal)))
            output.WriteLine(m);
    }
}
