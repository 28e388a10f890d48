using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Loads evaluation tasks from their published files (JSON Lines, or Hugging Face Parquet exports) with
/// lm-evaluation-harness prompt formats, and builds last-word tasks and corpora from plain text.
/// </summary>
public static class TaskLoader
{
    private static readonly Dictionary<string, (Func<TaskRecord, MultipleChoiceItem?> Parse, ChoiceMetric Metric)> Formats = new(StringComparer.OrdinalIgnoreCase)
    {
        ["hellaswag"] = (HarnessFormats.HellaSwag, ChoiceMetric.NormalizedAccuracy),
        ["piqa"] = (HarnessFormats.Piqa, ChoiceMetric.NormalizedAccuracy),
        ["boolq"] = (HarnessFormats.BoolQ, ChoiceMetric.Accuracy),
        ["arc_easy"] = (HarnessFormats.Arc, ChoiceMetric.NormalizedAccuracy),
        ["arc_challenge"] = (HarnessFormats.Arc, ChoiceMetric.NormalizedAccuracy),
        ["winogrande"] = (HarnessFormats.WinoGrande, ChoiceMetric.Accuracy),
        ["openbookqa"] = (HarnessFormats.OpenBookQa, ChoiceMetric.NormalizedAccuracy),
        ["sciq"] = (HarnessFormats.SciQ, ChoiceMetric.Accuracy),
        ["race"] = (RaceFormat.Parse, ChoiceMetric.Accuracy),
        ["mc"] = (HarnessFormats.Generic, ChoiceMetric.Accuracy),
    };

    /// <summary>Multiple-choice formats <see cref="LoadMultipleChoice"/> knows ("mc" is the generic {"context", "choices", "label"} format).</summary>
    public static IReadOnlyCollection<string> MultipleChoiceFormats => Formats.Keys;

    /// <summary>True when <paramref name="format"/> names a multiple-choice format.</summary>
    public static bool IsMultipleChoiceFormat(string format) => Formats.ContainsKey(format);

    /// <summary>
    /// Loads a multiple-choice task. Unlabelled records (public test splits) are skipped and counted in
    /// <see cref="MultipleChoiceTask.SkippedItems"/>.
    /// </summary>
    /// <param name="format">One of <see cref="MultipleChoiceFormats"/>.</param>
    /// <param name="path">A <c>.jsonl</c>/<c>.json</c> or <c>.parquet</c> file.</param>
    /// <param name="fewShotPath">Optional separate split (same format) for few-shot examples.</param>
    /// <param name="name">Report name (default: the format).</param>
    /// <exception cref="ArgumentException">Unknown format.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">Malformed line, missing field, label out of range or no labelled records; the message names file and line.</exception>
    public static MultipleChoiceTask LoadMultipleChoice(string format, string path, string? fewShotPath = null, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(format);
        if (!Formats.TryGetValue(format, out var spec))
            throw new ArgumentException($"Unknown task format '{format}'. Known: {string.Join(", ", Formats.Keys)}, lambada.", nameof(format));
        var (items, skipped) = ReadItems(path, spec.Parse);
        var fewShot = fewShotPath is null ? null : ReadItems(fewShotPath, spec.Parse).Items;
        return new MultipleChoiceTask(name ?? format.ToLowerInvariant(), items, fewShot, spec.Metric, skipped);
    }

    /// <summary>Loads LAMBADA (records with a "text" field): context = all but the last space-separated word, target = " " + that word.</summary>
    /// <exception cref="CheckpointFormatException">Malformed line, missing "text", or a one-word text.</exception>
    public static ClozeTask LoadLambada(string path, string? name = null) =>
        new(name ?? "lambada", TaskRecordReader.Read(path).Select(HarnessFormats.Lambada).ToArray());

    /// <summary>
    /// Reads a plain-text corpus as documents separated by one or more blank lines (each document's lines are kept
    /// as they are, joined by "\n").
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file holds no text.</exception>
    public static IReadOnlyList<string> ReadDocuments(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Text file '{path}' does not exist.", path);
        var docs = new List<string>();
        var current = new List<string>();
        foreach (var line in InputFile.ReadLines(path, "Text file"))
        {
            if (line.Trim().Length == 0)
            {
                if (current.Count > 0) docs.Add(string.Join('\n', current));
                current.Clear();
            }
            else current.Add(line.TrimEnd('\r'));
        }
        if (current.Count > 0) docs.Add(string.Join('\n', current));
        if (docs.Count == 0) throw new CheckpointFormatException($"Text file '{path}' holds no text.");
        return docs;
    }

    private static (MultipleChoiceItem[] Items, int Skipped) ReadItems(string path, Func<TaskRecord, MultipleChoiceItem?> parse)
    {
        var items = new List<MultipleChoiceItem>();
        int skipped = 0;
        foreach (var record in TaskRecordReader.Read(path))
        {
            MultipleChoiceItem? item;
            try { item = parse(record); }
            catch (ArgumentException ex) { throw new CheckpointFormatException($"{record.Where}: {ex.Message}", ex); }
            if (item is null) skipped++;
            else items.Add(item);
        }
        if (items.Count == 0) throw new CheckpointFormatException($"Task file '{path}' has no labelled records ({skipped} unlabelled).");
        return (items.ToArray(), skipped);
    }
}
