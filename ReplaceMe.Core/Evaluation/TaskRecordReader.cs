using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Serialization;
using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Evaluation;

/// <summary>One record of a task file: its JSON object and where it came from (for error messages).</summary>
internal readonly record struct TaskRecord(string File, int Line, JsonObject Data)
{
    /// <summary>"file:line" (JSONL line, or 1-based Parquet row).</summary>
    public string Where => $"{File}:{Line}";
}

/// <summary>
/// Reads task records from JSON Lines (<c>.jsonl</c>, or <c>.json</c> holding lines or one array) or from a
/// Hugging Face Parquet export (<c>.parquet</c>); Parquet rows become the same JSON objects, so every format
/// parser handles both. Malformed lines raise <see cref="CheckpointFormatException"/> with the line number.
/// </summary>
internal static class TaskRecordReader
{
    public static List<TaskRecord> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Task file '{path}' does not exist.", path);
        var records = Path.GetExtension(path).Equals(".parquet", StringComparison.OrdinalIgnoreCase) ? ReadParquet(path) : ReadJson(path);
        if (records.Count == 0) throw new CheckpointFormatException($"Task file '{path}' holds no records.");
        return records;
    }

    private static List<TaskRecord> ReadJson(string path)
    {
        var text = DecodeUtf8(InputFile.ReadAllBytes(path, InputFile.TaskFileMaxBytes, "Task file"));
        var records = new List<TaskRecord>();
        if (text.TrimStart().StartsWith('['))
        {
            JsonArray array;
            try { array = ParseNode(text, path) as JsonArray ?? throw new CheckpointFormatException($"{path}: expected a JSON array of objects."); }
            catch (JsonException ex) { throw new CheckpointFormatException($"{path}: malformed JSON array: {ex.Message}", ex); }
            for (int i = 0; i < array.Count; i++)
                records.Add(new TaskRecord(path, i + 1, array[i] as JsonObject ?? throw new CheckpointFormatException($"{path}: element {i + 1} is not a JSON object.")));
            return records;
        }

        int line = 0;
        foreach (var raw in text.Split('\n'))
        {
            line++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            JsonNode? node;
            try { node = ParseNode(raw, $"{path}:{line}"); }
            catch (JsonException ex) { throw new CheckpointFormatException($"{path}:{line}: malformed JSON: {ex.Message}", ex); }
            records.Add(new TaskRecord(path, line, node as JsonObject ?? throw new CheckpointFormatException($"{path}:{line}: expected a JSON object on the line.")));
        }
        return records;
    }

    // File.ReadAllText's decoding: UTF-8 with an optional BOM.
    private static string DecodeUtf8(byte[] bytes) =>
        bytes.AsSpan().StartsWith("\uFEFF"u8) ? System.Text.Encoding.UTF8.GetString(bytes, 3, bytes.Length - 3) : System.Text.Encoding.UTF8.GetString(bytes);

    // JSON with a key named twice is refused (readers disagree on which value wins).
    private static JsonNode? ParseNode(string json, string where)
    {
        using var doc = JsonDocument.Parse(json);
        InputFile.RefuseDuplicateKeys(doc.RootElement, where);
        return JsonNode.Parse(json);
    }

    private static List<TaskRecord> ReadParquet(string path)
    {
        using var stream = InputFile.OpenRegular(path, InputFile.Streamed, "Task file");
        Calibration.ParquetFooter.Check(stream, path);
        var records = new List<TaskRecord>();
        try
        {
            var result = ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult();
            int row = 0;
            foreach (var dict in result.Data)
            {
                row++;
                records.Add(new TaskRecord(path, row, (JsonObject)ToJson(dict)!));
            }
        }
        catch (Exception ex) when (ex is not (ReplaceMeException or OperationCanceledException))
        {
            throw new CheckpointFormatException($"{path}: not a readable Parquet file: {ex.GetType().Name}: {ex.Message}", ex);
        }
        return records;
    }

    /// <summary>Parquet values (structs as dictionaries, lists, scalars) as JSON nodes.</summary>
    internal static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        ReadOnlyMemory<char> m => JsonValue.Create(m.ToString()),
        ReadOnlyMemory<byte> mb => JsonValue.Create(System.Text.Encoding.UTF8.GetString(mb.Span)),
        bool b => JsonValue.Create(b),
        IDictionary<string, object> d => new JsonObject(d.Select(kv => KeyValuePair.Create(kv.Key, ToJson(kv.Value)))),
        IDictionary d => new JsonObject(d.Keys.Cast<object>().Select(k => KeyValuePair.Create(Convert.ToString(k, System.Globalization.CultureInfo.InvariantCulture)!, ToJson(d[k])))),
        byte[] bytes => JsonValue.Create(Convert.ToBase64String(bytes)),
        IEnumerable e => new JsonArray(e.Cast<object?>().Select(ToJson).ToArray()),
        sbyte or byte or short or ushort or int or uint or long => JsonValue.Create(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)),
        float or double or decimal => JsonValue.Create(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)),
    };
}
