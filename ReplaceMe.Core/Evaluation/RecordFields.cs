using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Evaluation;

/// <summary>Typed field access on task records; every failure names the file, line and field.</summary>
internal static class RecordFields
{
    public static string String(this TaskRecord record, string key) => OptionalString(record, key)
        ?? throw new CheckpointFormatException($"{record.Where}: missing string field '{key}'.");

    public static string? OptionalString(this TaskRecord record, string key) => OptionalString(record, record.Data, key);

    public static string? OptionalString(TaskRecord record, JsonObject obj, string key)
    {
        if (!obj.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        if (node is JsonValue n && n.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False) return n.ToJsonString();
        throw new CheckpointFormatException($"{record.Where}: field '{key}' must be a string (got {node.GetValueKind()}).");
    }

    public static JsonObject Object(this TaskRecord record, JsonObject obj, string key) =>
        obj.TryGetPropertyValue(key, out var node) && node is JsonObject o ? o
        : throw new CheckpointFormatException($"{record.Where}: missing object field '{key}'.");

    public static IReadOnlyList<string> Strings(this TaskRecord record, JsonObject obj, string key)
    {
        if (!obj.TryGetPropertyValue(key, out var node) || node is not JsonArray array)
            throw new CheckpointFormatException($"{record.Where}: missing array field '{key}'.");
        return array.Select((e, i) => e is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
            : throw new CheckpointFormatException($"{record.Where}: element {i} of '{key}' must be a string.")).ToArray();
    }

    /// <summary>An integer label from a number or a digit string; null for an empty string or null (unlabelled test data).</summary>
    public static int? Label(this TaskRecord record, string key)
    {
        if (!record.Data.TryGetPropertyValue(key, out var node))
            throw new CheckpointFormatException($"{record.Where}: missing label field '{key}'.");
        if (node is null) return null;
        if (node is JsonValue v)
        {
            switch (v.GetValueKind())
            {
                case JsonValueKind.Number when v.TryGetValue<int>(out var i): return i;
                case JsonValueKind.Number when v.TryGetValue<double>(out var d) && d == Math.Floor(d): return (int)d;
                case JsonValueKind.True: return 1;
                case JsonValueKind.False: return 0;
                case JsonValueKind.String:
                    var s = v.GetValue<string>().Trim();
                    if (s.Length == 0) return null;
                    if (int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed)) return parsed;
                    break;
            }
        }
        throw new CheckpointFormatException($"{record.Where}: label field '{key}' must be an integer (got {node.ToJsonString()}).");
    }

    /// <summary>Checks a label against the number of choices.</summary>
    public static int InRange(this TaskRecord record, int label, int choices, string key)
    {
        if (label < 0 || label >= choices)
            throw new CheckpointFormatException($"{record.Where}: label {label} in '{key}' is outside [0, {choices}).");
        return label;
    }
}
