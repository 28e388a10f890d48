using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// RACE in the harness's format. A grouped record (EleutherAI/race: "article" + "problems", a list of
/// {question, options, answer} given as JSON or as the Python-literal string that export holds) becomes one item
/// for its last problem, preceded by the earlier problems solved: "Article: {article}\n\n", then per earlier
/// problem "Question: {q}\nAnswer: {a}\n" (or, for fill-in questions ending in "  _  .", the question's tail
/// followed by the answer), then the last question; choices are its four options. A per-question record
/// (ehovy/race: "article", "question", "options", "answer") is the same with no earlier problems.
/// </summary>
internal static class RaceFormat
{
    public static MultipleChoiceItem Parse(TaskRecord r)
    {
        string article = r.String("article");
        var problems = r.Data.ContainsKey("problems") ? Problems(r) : [(r.String("question"), r.Strings(r.Data, "options"), r.String("answer"))];
        if (problems.Count == 0) throw new CheckpointFormatException($"{r.Where}: 'problems' is empty.");
        var text = new StringBuilder("Article: ").Append(article).Append("\n\n");
        foreach (var (question, options, answer) in problems.Take(problems.Count - 1))
        {
            string solved = options[AnswerIndex(r, answer, options.Count)];
            if (question.EndsWith("  _  .", StringComparison.Ordinal)) text.Append(question[^5..]).Append(solved).Append('\n');
            else text.Append("Question: ").Append(question).Append("\nAnswer: ").Append(solved).Append('\n');
        }
        var last = problems[^1];
        text.Append(last.Question);
        return MultipleChoiceItem.Create(text.ToString(), last.Options, AnswerIndex(r, last.Answer, last.Options.Count));
    }

    private static int AnswerIndex(TaskRecord r, string answer, int optionCount)
    {
        string a = answer.Trim();
        if (a.Length != 1 || a[0] < 'A' || a[0] - 'A' >= optionCount)
            throw new CheckpointFormatException($"{r.Where}: answer '{answer}' is not a letter A–{(char)('A' + optionCount - 1)}.");
        return a[0] - 'A';
    }

    private static List<(string Question, IReadOnlyList<string> Options, string Answer)> Problems(TaskRecord r)
    {
        var node = r.Data["problems"];
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            string s = v.GetValue<string>();
            try { node = JsonNode.Parse(s); }
            catch (JsonException) { node = JsonNode.Parse(PythonLiteralToJson(r, s)); }
        }
        if (node is not JsonArray array) throw new CheckpointFormatException($"{r.Where}: 'problems' must be a list.");
        return array.Select((p, i) =>
        {
            var o = p as JsonObject ?? throw new CheckpointFormatException($"{r.Where}: problems[{i}] is not an object.");
            return (RecordFields.OptionalString(r, o, "question") ?? throw new CheckpointFormatException($"{r.Where}: problems[{i}] lacks 'question'."),
                r.Strings(o, "options"),
                RecordFields.OptionalString(r, o, "answer") ?? throw new CheckpointFormatException($"{r.Where}: problems[{i}] lacks 'answer'."));
        }).ToList();
    }

    /// <summary>Rewrites a Python literal of lists, dicts and strings (repr output) as JSON.</summary>
    internal static string PythonLiteralToJson(TaskRecord r, string s)
    {
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\'' or '"')
            {
                char quote = c;
                sb.Append('"');
                for (i++; i < s.Length && s[i] != quote; i++)
                {
                    char d = s[i];
                    if (d == '\\' && i + 1 < s.Length)
                    {
                        char e = s[++i];
                        switch (e)
                        {
                            case 'n': sb.Append("\\n"); break;
                            case 't': sb.Append("\\t"); break;
                            case 'r': sb.Append("\\r"); break;
                            case '\\': sb.Append("\\\\"); break;
                            case '\'': sb.Append('\''); break;
                            case '"': sb.Append("\\\""); break;
                            case 'x' when i + 2 < s.Length:
                                sb.Append("\\u00").Append(s, i + 1, 2); i += 2; break;
                            case 'u' when i + 4 < s.Length:
                                sb.Append("\\u").Append(s, i + 1, 4); i += 4; break;
                            default: sb.Append("\\\\").Append(e); break;
                        }
                    }
                    else if (d == '"') sb.Append("\\\"");
                    else if (d < ' ') sb.Append("\\u").Append(((int)d).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(d);
                }
                if (i >= s.Length) throw new CheckpointFormatException($"{r.Where}: unterminated string in 'problems'.");
                sb.Append('"');
            }
            else if (s.AsSpan(i).StartsWith("True")) { sb.Append("true"); i += 3; }
            else if (s.AsSpan(i).StartsWith("False")) { sb.Append("false"); i += 4; }
            else if (s.AsSpan(i).StartsWith("None")) { sb.Append("null"); i += 3; }
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
