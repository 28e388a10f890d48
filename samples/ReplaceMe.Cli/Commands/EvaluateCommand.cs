using System.CommandLine;
using ReplaceMe.Core;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Evaluation;
using ReplaceMe.Core.Modeling;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Cli.Commands;

/// <summary>
/// <c>replaceme evaluate</c>: perplexity, last-word accuracy and multiple-choice tasks for a model, and with
/// <c>--baseline</c> the retention table (per-task score, average, % of the original).
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Option<string>("--model") { Description = "Model folder (Hugging Face layout) to evaluate.", Required = true };
        var baseline = new Option<string?>("--baseline") { Description = "Original model folder: also evaluate it and print the retention table." };
        var text = new Option<string?>("--text") { Description = "Plain-text file (documents separated by blank lines): perplexity and a last-word task built from it." };
        var tasks = new Option<string[]>("--task") { Description = "NAME[:FORMAT]=FILE, repeatable. Formats: " + string.Join(", ", TaskLoader.MultipleChoiceFormats) + ", lambada, cloze (plain text)." };
        var fewShot = new Option<string[]>("--fewshot") { Description = "NAME=FILE: separate split to draw --shots examples from for task NAME (default: the task's other items)." };
        var shots = new Option<int>("--shots") { Description = "Few-shot examples per multiple-choice prompt.", DefaultValueFactory = _ => 0 };
        var limit = new Option<int?>("--limit") { Description = "Evaluate only the first N items of each task." };
        var json = new Option<string?>("--json") { Description = "Also write the report as JSON to this file." };
        var batch = new Option<int>("--batch-size") { Description = "Sequences per forward pass.", DefaultValueFactory = _ => 8 };
        var maxLength = new Option<int?>("--max-length") { Description = "Longest sequence in tokens (default: min(1024, the model's max_position_embeddings))." };
        var stride = new Option<int?>("--stride") { Description = "Perplexity window stride in tokens (default: the window length)." };
        var threads = CliOptions.Threads();

        var command = new Command("evaluate", "Evaluate a model (perplexity, last-word accuracy, multiple-choice tasks); with --baseline, print how much of the original it retains.")
        {
            model, baseline, text, tasks, fewShot, shots, limit, json, batch, maxLength, stride, threads,
        };
        var memory = new MemoryArgs();
        memory.AddTo(command);
        command.SetAction((parse, cancellationToken) =>
        {
            try
            {
                var request = new EvaluateRequest(
                    parse.GetValue(model)!, parse.GetValue(baseline), parse.GetValue(text), parse.GetValue(tasks) ?? [], parse.GetValue(fewShot) ?? [],
                    parse.GetValue(shots), parse.GetValue(limit), parse.GetValue(json), parse.GetValue(batch), parse.GetValue(maxLength), parse.GetValue(stride))
                {
                    Streaming = parse.GetValue(memory.Streaming),
                    MaxMemory = memory.Budget(parse),
                    SpillDir = parse.GetValue(memory.SpillDir),
                };
                using var threadScope = CliOptions.UseThreads(parse, threads);
                return Task.FromResult(Run(context, request, cancellationToken));
            }
            catch (Exception ex) when (ex is ReplaceMeException or ArgumentException or IOException or UnauthorizedAccessException)
            {
                context.Error.WriteLine("error: " + ex.Message);
                return Task.FromResult(1);
            }
        });
        return command;
    }

    private sealed record EvaluateRequest(
        string Model, string? Baseline, string? Text, string[] Tasks, string[] FewShot, int Shots, int? Limit, string? Json,
        int BatchSize, int? MaxLength, int? Stride)
    {
        /// <summary>--streaming: run every model evaluated block by block.</summary>
        public bool Streaming { get; init; }

        /// <summary>--max-memory: stream a model whose weights do not fit it, and size a streamed evaluation's hidden-state store to it.</summary>
        public long? MaxMemory { get; init; }

        /// <summary>--spill-dir: folder of a streamed evaluation's spilled hidden states.</summary>
        public string? SpillDir { get; init; }
    }

    private static int Run(CliContext context, EvaluateRequest request, CancellationToken cancellationToken)
    {
        var suite = BuildSuite(request);
        if (suite.IsEmpty) throw new ArgumentException("Nothing to evaluate: give --text FILE and/or --task NAME=FILE.");
        // Both folders and their configs are checked before either model is evaluated, so a bad --model does not
        // surface only after the baseline's evaluation.
        if (request.Baseline is { } baselineDir) CheckModel(baselineDir, request, "--baseline");
        CheckModel(request.Model, request, "--model");

        var modelResidency = Residency(request.Model, request);
        var baselineResidency = request.Baseline is { } baseDir ? Residency(baseDir, request) : modelResidency;
        if (request.SpillDir is not null && modelResidency.Residency != ModelResidency.Streamed && baselineResidency.Residency != ModelResidency.Streamed)
            throw new ArgumentException($"--spill-dir is used only when a model is streamed, but it is loaded in memory ({modelResidency.Reason}); drop --spill-dir or add --streaming.");

        var (modelName, baselineName) = Names(request.Model, request.Baseline);
        ModelScores? original = request.Baseline is { } b ? EvaluateModel(context, b, baselineName, baselineResidency, suite, request, cancellationToken) : null;
        var scores = EvaluateModel(context, request.Model, modelName, modelResidency, suite, request, cancellationToken);

        var report = original is null ? RetentionReport.Create(scores, []) : RetentionReport.Create(original, [scores]);
        context.Out.Write(report.ToText());
        if (request.Json is { } jsonPath)
        {
            string tmp = jsonPath + ".tmp";
            File.WriteAllText(tmp, report.ToJson());
            File.Move(tmp, jsonPath, overwrite: true);
            context.Out.WriteLine($"report written to {jsonPath}");
        }
        return 0;
    }

    private static void CheckModel(string dir, EvaluateRequest request, string option)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{option}: model folder not found: {dir}");
        string configPath = Path.Combine(dir, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{option}: {dir} has no config.json (not a Hugging Face model folder).", configPath);
        var config = ModelConfigJson.Load(configPath);
        if (request.MaxLength is int maxLength && maxLength > config.MaxPositionEmbeddings)
            throw new ArgumentException($"--max-length {maxLength} exceeds the context of {option} {dir} ({config.MaxPositionEmbeddings} tokens, max_position_embeddings).");
        _ = TokenizerLoader.Load(dir); // cheap, and a missing tokenizer is reported now
    }

    private static (ModelResidency Residency, string Reason) Residency(string dir, EvaluateRequest request) =>
        request.Streaming ? (ModelResidency.Streamed, "--streaming")
        : request.MaxMemory is long budget ? (TransformerLoader.Choose(dir, null, ModelResidency.Auto, budget, out var why), why)
        : (ModelResidency.InMemory, "no --max-memory");

    private static ModelScores EvaluateModel(CliContext context, string dir, string name, (ModelResidency Residency, string Reason) choice,
        EvaluationSuite suite, EvaluateRequest request, CancellationToken cancellationToken)
    {
        var (model, config, tokenizer) = CliModels.LoadAdapter(dir, choice.Residency, choice.Reason, context.Error);
        using var owned = (IDisposable)model;
        var options = new EvaluationOptions
        {
            BatchSize = request.BatchSize,
            MaxLength = request.MaxLength ?? Math.Min(1024, config.MaxPositionEmbeddings),
            Stride = request.Stride,
            Shots = request.Shots,
            Limit = request.Limit,
        };
        IProgress<ReplaceMe.Core.PruningProgress>? progress = null;
        if (model is StreamedDecoderModel streamed)
        {
            // Block-major: each block, then each LM-head chunk, is read once per corpus or task; progress goes to stderr
            // beside the other status lines, so the report on stdout is the same as for the model in memory.
            options = MemoryArgs.ApplyEvaluation(request.MaxMemory, request.SpillDir, options, streamed, context.Error);
            progress = new BlockProgressPrinter(context.Error);
        }
        context.Error.WriteLine($"evaluating {name} ({model.BlockCount} blocks)…");
        return new ModelEvaluator(model, tokenizer, options).Evaluate(name, suite, progress, cancellationToken);
    }

    private static EvaluationSuite BuildSuite(EvaluateRequest request)
    {
        var corpora = new List<TextCorpus>();
        var cloze = new List<ClozeTask>();
        var choice = new List<MultipleChoiceTask>();
        if (request.Text is { } textPath)
        {
            var docs = TaskLoader.ReadDocuments(textPath);
            string name = Path.GetFileNameWithoutExtension(textPath);
            corpora.Add(new TextCorpus(name, docs));
            cloze.Add(ClozeTask.FromDocuments(name + "-lastword", docs));
        }
        var fewShot = request.FewShot.Select(f => Split(f, "--fewshot")).ToDictionary(f => f.Key, f => f.Value, StringComparer.OrdinalIgnoreCase);
        foreach (var spec in request.Tasks)
        {
            var (key, file) = Split(spec, "--task");
            var parts = key.Split(':', 2);
            string name = parts[0], format = parts.Length > 1 ? parts[1] : parts[0];
            if (format.Equals("lambada", StringComparison.OrdinalIgnoreCase)) cloze.Add(TaskLoader.LoadLambada(file, name));
            else if (format.Equals("cloze", StringComparison.OrdinalIgnoreCase)) cloze.Add(ClozeTask.FromDocuments(name, TaskLoader.ReadDocuments(file)));
            else if (TaskLoader.IsMultipleChoiceFormat(format)) choice.Add(TaskLoader.LoadMultipleChoice(format, file, fewShot.GetValueOrDefault(name), name));
            else throw new ArgumentException($"--task {spec}: unknown format '{format}'. Use NAME:FORMAT=FILE with one of {string.Join(", ", TaskLoader.MultipleChoiceFormats)}, lambada, cloze (NAME:mc=FILE for your own {{\"context\", \"choices\", \"label\"}} JSONL).");
        }
        foreach (var name in fewShot.Keys)
            if (!choice.Any(t => t.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"--fewshot {name}=…: there is no multiple-choice --task named '{name}'.");
        return new EvaluationSuite(corpora, cloze, choice);
    }

    private static KeyValuePair<string, string> Split(string spec, string option)
    {
        int eq = spec.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == spec.Length - 1) throw new ArgumentException($"{option} '{spec}': expected NAME=FILE.");
        return KeyValuePair.Create(spec[..eq], spec[(eq + 1)..]);
    }

    private static (string Model, string Baseline) Names(string model, string? baseline)
    {
        string m = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model)));
        if (baseline is null) return (m, "");
        string b = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(baseline)));
        return m == b ? ("pruned: " + m, "original: " + b) : (m, b);
    }
}
