using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// Typed access to JSON object fields with errors that name the key and the file. A key that is absent or
/// JSON <c>null</c> counts as missing (Hugging Face writes <c>null</c> for "use the default").
/// </summary>
internal readonly struct JsonFields(JsonObject obj, string sourceName)
{
    public JsonObject Object => obj;

    public bool Has(string key) => obj[key] is not null;

    public CheckpointFormatException Error(string key, string expected) =>
        new($"'{key}' in {sourceName}: expected {expected}, found {Describe(obj[key])}.");

    public int RequiredInt(string key, int min = 1) =>
        OptionalInt(key, min) ?? throw new CheckpointFormatException($"{sourceName} lacks the required key '{key}'.");

    public int? OptionalInt(string key, int min = int.MinValue)
    {
        var node = obj[key];
        if (node is null) return null;
        if (!TryInt(node, out var v)) throw Error(key, "an integer");
        if (v < min) throw Error(key, $"an integer >= {min}");
        return v;
    }

    public double? OptionalDouble(string key, bool positive = false)
    {
        var node = obj[key];
        if (node is null) return null;
        if (!TryDouble(node, out var v) || !double.IsFinite(v)) throw Error(key, "a finite number");
        if (positive && v <= 0) throw Error(key, "a number > 0");
        return v;
    }

    public bool? OptionalBool(string key)
    {
        var node = obj[key];
        if (node is null) return null;
        if (node is JsonValue jv && jv.GetValueKind() is JsonValueKind.True or JsonValueKind.False) return jv.GetValue<bool>();
        throw Error(key, "true or false");
    }

    public string? OptionalString(string key)
    {
        var node = obj[key];
        if (node is null) return null;
        if (node is JsonValue jv && jv.GetValueKind() == JsonValueKind.String) return jv.GetValue<string>();
        throw Error(key, "a string");
    }

    public JsonObject? OptionalObject(string key)
    {
        var node = obj[key];
        if (node is null) return null;
        return node as JsonObject ?? throw Error(key, "a JSON object");
    }

    /// <summary>An int or a list of ints (e.g. <c>eos_token_id</c>); empty when missing.</summary>
    public IReadOnlyList<int> IntOrIntList(string key)
    {
        var node = obj[key];
        if (node is null) return [];
        if (TryInt(node, out var single)) return [single];
        if (node is JsonArray arr)
        {
            var list = new List<int>(arr.Count);
            foreach (var item in arr)
            {
                if (item is null || !TryInt(item, out var v)) throw Error(key, "an integer or a list of integers");
                list.Add(v);
            }
            return list;
        }
        throw Error(key, "an integer or a list of integers");
    }

    public static bool TryInt(JsonNode node, out int value)
    {
        value = 0;
        if (node is not JsonValue jv || jv.GetValueKind() != JsonValueKind.Number) return false;
        if (jv.TryGetValue(out value)) return true;
        // Some writers emit integral values as 32.0; accept those, reject 32.5.
        if (TryDouble(node, out var d) && d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue)
        {
            value = (int)d;
            return true;
        }
        return false;
    }

    public static bool TryDouble(JsonNode node, out double value)
    {
        value = 0;
        if (node is not JsonValue jv || jv.GetValueKind() != JsonValueKind.Number) return false;
        if (jv.TryGetValue(out value)) return true;
        if (jv.TryGetValue(out long l)) { value = l; return true; }
        if (jv.TryGetValue(out int i)) { value = i; return true; }
        if (jv.TryGetValue(out float f)) { value = f; return true; }
        if (jv.TryGetValue(out decimal m)) { value = (double)m; return true; }
        return double.TryParse(jv.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    private static string Describe(JsonNode? node) => node switch
    {
        null => "nothing",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => $"{v.GetValueKind().ToString().ToLowerInvariant()} {Truncate(v.ToJsonString())}",
        _ => "an unknown node",
    };

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
