using System.Text;
using System.Text.Json;
using Parquet;
using Parquet.Schema;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Calibration;

/// <summary>How a plain-text file is cut into documents.</summary>
public enum TextSplit
{
    /// <summary>Documents are separated by one or more blank lines (paragraphs, stories).</summary>
    BlankLine,
    /// <summary>Every non-empty line is a document.</summary>
    Line,
}

/// <summary>How to read a calibration file.</summary>
/// <param name="Column">JSONL/Parquet column holding the text. In JSONL a column whose value is an array of
/// <c>{from, value}</c> turns (SlimOrca's <c>conversations</c>) is rendered with <paramref name="Chat"/>.</param>
/// <param name="Split">How plain-text files are cut into documents.</param>
/// <param name="Selection">Which documents to keep (all, first N, seeded random N).</param>
/// <param name="Chat">Template for conversation columns; null uses <see cref="ChatTemplate.Default"/>.</param>
public sealed record CalibrationFileOptions(
    string Column = "text",
    TextSplit Split = TextSplit.BlankLine,
    DocumentSelection? Selection = null,
    ChatTemplate? Chat = null);

/// <summary>
/// Reads calibration documents from plain text (<c>.txt</c>, <c>.md</c> or any other extension), JSON Lines
/// (<c>.jsonl</c>, <c>.json</c>) or Parquet (<c>.parquet</c>, e.g. a Hugging Face dataset export). Empty documents
/// are skipped; a file with none left is an error.
/// </summary>
public static class CalibrationFile
{
    private const string What = "Calibration file";

    /// <summary>Reads documents, choosing the format by extension.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The file is not a regular file (a FIFO or device is refused before it is
    /// opened), is malformed (JSONL errors name the line, a key named twice included; Parquet errors the row group), has a
    /// line over 64 Mi (67,108,864) characters, lacks the column, or holds no documents.</exception>
    public static async Task<IReadOnlyList<string>> ReadAsync(string path, CalibrationFileOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new CalibrationFileOptions();
        if (!File.Exists(path)) throw new FileNotFoundException($"Calibration file '{path}' does not exist.", path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        List<string> docs = ext switch
        {
            ".jsonl" or ".json" => ReadJsonLines(path, options.Column, options.Chat ?? ChatTemplate.Default),
            ".parquet" => await ReadParquetAsync(path, options.Column, cancellationToken).ConfigureAwait(false),
            _ => ReadText(path, options.Split),
        };
        if (docs.Count == 0) throw new CheckpointFormatException($"Calibration file '{path}' contains no non-empty documents.");
        return (options.Selection ?? DocumentSelection.All).Apply(docs);
    }

    /// <summary>Synchronous <see cref="ReadAsync"/>.</summary>
    /// <inheritdoc cref="ReadAsync" path="/exception"/>
    public static IReadOnlyList<string> Read(string path, CalibrationFileOptions? options = null) =>
        ReadAsync(path, options).GetAwaiter().GetResult();

    internal static List<string> ReadText(string path, TextSplit split)
    {
        var docs = new List<string>();
        if (split == TextSplit.Line)
        {
            foreach (var line in InputFile.ReadLines(path, What))
                if (!string.IsNullOrWhiteSpace(line)) docs.Add(line.Trim());
            return docs;
        }
        var current = new StringBuilder();
        foreach (var line in InputFile.ReadLines(path, What))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                Flush();
                continue;
            }
            if (current.Length > 0) current.Append('\n');
            current.Append(line.TrimEnd());
        }
        Flush();
        return docs;

        void Flush()
        {
            if (current.Length > 0) docs.Add(current.ToString());
            current.Clear();
        }
    }

    internal static List<string> ReadJsonLines(string path, string column, ChatTemplate chat)
    {
        var docs = new List<string>();
        int lineNo = 0;
        foreach (var line in InputFile.ReadLines(path, What))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException ex)
            {
                throw new CheckpointFormatException($"{path} line {lineNo}: not valid JSON ({ex.Message}).", ex);
            }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new CheckpointFormatException($"{path} line {lineNo}: expected a JSON object, got {root.ValueKind}.");
                InputFile.RefuseDuplicateKeys(root, $"{path} line {lineNo}");
                if (!root.TryGetProperty(column, out var value))
                {
                    var names = string.Join(", ", root.EnumerateObject().Select(p => p.Name));
                    throw new CheckpointFormatException($"{path} line {lineNo}: no column '{column}' (columns: {names}).");
                }
                string text;
                switch (value.ValueKind)
                {
                    case JsonValueKind.String:
                        text = value.GetString()!;
                        break;
                    case JsonValueKind.Array:
                        try { text = chat.RenderConversation(value); }
                        catch (FormatException ex)
                        {
                            throw new CheckpointFormatException($"{path} line {lineNo}: column '{column}' is not a usable conversation: {ex.Message}", ex);
                        }
                        break;
                    case JsonValueKind.Null:
                        continue;
                    default:
                        throw new CheckpointFormatException($"{path} line {lineNo}: column '{column}' must be a string or a conversation array, got {value.ValueKind}.");
                }
                if (!string.IsNullOrWhiteSpace(text)) docs.Add(text);
            }
        }
        return docs;
    }

    /// <summary>
    /// Reads a string column of every row group. Anything that goes wrong inside Parquet.Net (Thrift metadata, Snappy or
    /// other codecs, a corrupt page asking for gigabytes) is reported as one <see cref="CheckpointFormatException"/>
    /// naming the file and, once the row groups are being read, the row group.
    /// </summary>
    internal static async Task<List<string>> ReadParquetAsync(string path, string column, CancellationToken ct)
    {
        var stream = InputFile.OpenRegular(path, InputFile.Streamed, What);
        await using var disposeStream = stream.ConfigureAwait(false);
        ParquetFooter.Check(stream, path);
        int group = -1;
        try
        {
            var reader = await ParquetReader.CreateAsync(stream, cancellationToken: ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var fields = reader.Schema.GetDataFields();
                var field = fields.FirstOrDefault(f => f.Name == column || f.Path.ToString() == column)
                    ?? throw new CheckpointFormatException($"{path}: no column '{column}' (columns: {string.Join(", ", fields.Select(f => f.Path.ToString()))}).");
                // Parquet.Net 6 reports UTF-8 string columns as ReadOnlyMemory<char>.
                if ((field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>)) || field.IsArray)
                    throw new CheckpointFormatException($"{path}: column '{column}' holds {(field.IsArray ? "lists of " : "")}{field.ClrType.Name}, expected strings.");
                var docs = new List<string>();
                for (group = 0; group < reader.RowGroupCount; group++)
                {
                    ct.ThrowIfCancellationRequested();
                    using var rowGroup = reader.OpenRowGroupReader(group);
                    // A row count larger than the file can hold is corrupt metadata, not a reason to allocate it.
                    if (rowGroup.RowCount < 0 || rowGroup.RowCount > stream.Length)
                        throw new CheckpointFormatException($"{path}: row group {group} claims {rowGroup.RowCount} rows in a {stream.Length}-byte file (corrupt metadata).");
                    var values = new string?[rowGroup.RowCount];
                    await rowGroup.ReadAsync(field, values.AsMemory(), null, ct).ConfigureAwait(false);
                    foreach (var v in values)
                        if (!string.IsNullOrWhiteSpace(v)) docs.Add(v);
                }
                return docs;
            }
        }
        catch (Exception ex) when (ex is not (ReplaceMeException or OperationCanceledException))
        {
            var where = group < 0 ? "" : $" (row group {group})";
            throw new CheckpointFormatException($"{path}: not a readable Parquet file{where}: {ex.GetType().Name}: {ex.Message}", ex);
        }
    }
}
