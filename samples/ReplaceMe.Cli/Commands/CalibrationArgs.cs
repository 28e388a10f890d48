using System.CommandLine;
using ReplaceMe.Core.Calibration;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Cli.Commands;

/// <summary>The calibration options shared by <c>profile</c> and <c>prune</c>: a file or self-generated text, then batching.</summary>
internal sealed class CalibrationArgs
{
    public Option<string?> File { get; } = new("--calibration", "-c") { Description = "Calibration file: .txt (documents separated by blank lines), .jsonl or .parquet" };
    public Option<int?> SelfGenerated { get; } = new("--self-generated") { Description = "Instead of a file: sample N documents from the model itself (seeded)" };
    public Option<string> Column { get; } = new("--column") { Description = "JSONL/Parquet column; a JSONL column of {from, value} turns (SlimOrca 'conversations') is rendered as chat", DefaultValueFactory = _ => "text" };
    public Option<bool> Lines { get; } = new("--lines") { Description = "Plain text: one document per line instead of blank-line-separated blocks" };
    public Option<int?> Samples { get; } = new("--samples") { Description = "Use only N documents of the file (the first N, or N at random with --random-samples)" };
    public Option<bool> RandomSamples { get; } = new("--random-samples") { Description = "Draw --samples documents at random (seeded by --seed) instead of the first N" };
    public Option<int> GeneratedTokens { get; } = new("--generated-tokens") { Description = "Tokens per self-generated document", DefaultValueFactory = _ => 128 };
    public Option<int> BatchSize { get; } = new("--batch-size") { Description = "Documents per calibration batch", DefaultValueFactory = _ => 8 };
    public Option<int> MaxLength { get; } = new("--max-length") { Description = "Tokens per document after truncation", DefaultValueFactory = _ => 1024 };
    public Option<int> Seed { get; } = new("--seed") { Description = "Seed for sampling documents, generation and estimators", DefaultValueFactory = _ => 0 };

    public CalibrationArgs()
    {
        CliOptions.Require(SelfGenerated, n => n is null or > 0, "--self-generated must be ≥ 1.");
        CliOptions.Require(Samples, n => n is null or > 0, "--samples must be ≥ 1.");
        CliOptions.Require(GeneratedTokens, n => n > 0, "--generated-tokens must be ≥ 1.");
        CliOptions.Require(BatchSize, n => n > 0, "--batch-size must be ≥ 1.");
        CliOptions.Require(MaxLength, n => n > 0, "--max-length must be ≥ 1.");
    }

    /// <param name="command">The verb.</param>
    /// <param name="insteadOf">An option that replaces calibration data (prune's --from-stats): when it is given, no
    /// calibration option may be.</param>
    public void AddTo(Command command, Option? insteadOf = null)
    {
        Option[] all = [File, SelfGenerated, Column, Lines, Samples, RandomSamples, GeneratedTokens, BatchSize, MaxLength, Seed];
        foreach (var o in all) command.Options.Add(o);
        command.Validators.Add(result =>
        {
            if (insteadOf is not null && result.GetResult(insteadOf) is not null)
            {
                if (all.FirstOrDefault(o => result.GetResult(o) is { Implicit: false }) is { } given)
                    result.AddError($"{given.Name} is not used with {insteadOf.Name} (the statistics already hold the calibration data).");
                return;
            }
            bool file = result.GetResult(File) is not null, generated = result.GetResult(SelfGenerated) is not null;
            if (file == generated) result.AddError("Give exactly one of --calibration FILE or --self-generated N.");
        });
    }

    /// <summary>Checks the calibration options against the model's config; call it before <see cref="LoadAsync"/> so that a
    /// bad value fails before any text is read or generated.</summary>
    /// <exception cref="ArgumentException">Self-generated documents or an explicit --max-length exceed the model's context.</exception>
    public void CheckAgainst(ParseResult parse, ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(parse);
        ArgumentNullException.ThrowIfNull(config);
        int context = config.MaxPositionEmbeddings;
        if (parse.GetValue(SelfGenerated) is not null && parse.GetValue(GeneratedTokens) + 1 > context)
            throw new ArgumentException($"--generated-tokens {parse.GetValue(GeneratedTokens)} does not fit the model's context of {context} tokens (with the BOS token): use at most {context - 1}.");
        if (parse.GetResult(MaxLength) is { Implicit: false } && parse.GetValue(MaxLength) > context)
            throw new ArgumentException($"--max-length {parse.GetValue(MaxLength)} exceeds the model's context of {context} tokens (max_position_embeddings).");
    }

    /// <summary>Reads or generates the documents and tokenizes them. Returns the batches and a description of the source.</summary>
    public async Task<(TokenBatchList Batches, string Source)> LoadAsync(
        ParseResult parse, ITransformerAdapter adapter, ITextTokenizer tokenizer, CancellationToken ct)
    {
        int batchSize = parse.GetValue(BatchSize), maxLength = parse.GetValue(MaxLength), seed = parse.GetValue(Seed);
        if (parse.GetValue(SelfGenerated) is int count)
        {
            var model = adapter as DecoderModel ?? throw new ArgumentException(
                "--self-generated needs the model in memory (it generates text token by token); a streamed model calibrates on --calibration FILE.");
            int tokens = parse.GetValue(GeneratedTokens);
            var ids = SelfGeneratedText.GenerateTokens(model, tokenizer, count,
                new SelfGeneratedOptions { MaxNewTokens = tokens, Seed = seed }, cancellationToken: ct);
            var truncated = ids.Select(s => s.Count > maxLength ? s.Take(maxLength).ToArray() : s).ToList();
            return (CalibrationBatches.Batch(truncated, tokenizer.PadId, batchSize),
                $"self-generated: {count} documents of up to {tokens} new tokens from BOS, temperature 1, top-p 0.95, seed {seed}");
        }
        var path = parse.GetValue(File)!;
        var selection = parse.GetValue(Samples) is int n
            ? (parse.GetValue(RandomSamples) ? DocumentSelection.Sample(n, seed) : DocumentSelection.First(n))
            : DocumentSelection.All;
        var options = new CalibrationFileOptions(parse.GetValue(Column)!, parse.GetValue(Lines) ? TextSplit.Line : TextSplit.BlankLine, selection);
        var docs = await CalibrationFile.ReadAsync(path, options, ct).ConfigureAwait(false);
        return (CalibrationBatches.Tokenize(docs, tokenizer, batchSize, maxLength),
            $"{Path.GetFileName(path)}: {docs.Count} documents ({(selection.Count is null ? "all" : selection.Random ? $"random {selection.Count}, seed {seed}" : $"first {selection.Count}")})");
    }
}
