using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace ReplaceMe.Core.Evaluation;

/// <summary>
/// Record-to-item conversions with lm-evaluation-harness's prompt formats (see docs/evaluation.md). Each returns
/// null for an unlabelled record (public test splits), which the loader skips and counts.
/// </summary>
internal static partial class HarnessFormats
{
    public static MultipleChoiceItem? HellaSwag(TaskRecord r)
    {
        if (r.Label("label") is not { } label) return null;
        string ctx = r.String("ctx_a") + " " + Capitalize(r.String("ctx_b"));
        string query = Preprocess(r.String("activity_label") + ": " + ctx);
        var endings = r.Strings(r.Data, "endings").Select(Preprocess).ToArray();
        return MultipleChoiceItem.Create(query, endings, r.InRange(label, endings.Length, "label"));
    }

    public static MultipleChoiceItem? Piqa(TaskRecord r)
    {
        if (r.Label("label") is not { } label) return null;
        string[] choices = [r.String("sol1"), r.String("sol2")];
        return MultipleChoiceItem.Create($"Question: {r.String("goal")}\nAnswer:", choices, r.InRange(label, 2, "label"));
    }

    public static MultipleChoiceItem? BoolQ(TaskRecord r)
    {
        // SuperGLUE export: "label" 0/1; the original Google release: "answer" true/false.
        string key = r.Data.ContainsKey("label") ? "label" : "answer";
        if (r.Label(key) is not { } label) return null;
        return MultipleChoiceItem.Create($"{r.String("passage")}\nQuestion: {r.String("question")}?\nAnswer:", ["no", "yes"], r.InRange(label, 2, key));
    }

    public static MultipleChoiceItem? Arc(TaskRecord r)
    {
        var (stem, texts, labels) = QuestionWithChoices(r, "question");
        return AnswerKeyItem(r, $"Question: {stem}\nAnswer:", texts, labels);
    }

    public static MultipleChoiceItem? OpenBookQa(TaskRecord r)
    {
        var (stem, texts, labels) = r.Data.ContainsKey("question_stem") ? (r.String("question_stem"), r.Strings(r.Object(r.Data, "choices"), "text"), r.Strings(r.Object(r.Data, "choices"), "label"))
            : QuestionWithChoices(r, "question");
        return AnswerKeyItem(r, stem, texts, labels);
    }

    public static MultipleChoiceItem SciQ(TaskRecord r)
    {
        string context = $"{r.String("support").TrimStart()}\nQuestion: {r.String("question")}\nAnswer:";
        return MultipleChoiceItem.Create(context, [r.String("distractor1"), r.String("distractor2"), r.String("distractor3"), r.String("correct_answer")], 3);
    }

    public static MultipleChoiceItem? WinoGrande(TaskRecord r)
    {
        string sentence = r.String("sentence");
        if (r.Label("answer") is not { } answer) return null;
        int blank = sentence.IndexOf('_', StringComparison.Ordinal);
        if (blank < 0) throw new CheckpointFormatException($"{r.Where}: 'sentence' has no blank '_'.");
        string[] contexts = [sentence[..blank] + r.String("option1"), sentence[..blank] + r.String("option2")];
        return MultipleChoiceItem.Partial(contexts, " " + sentence[(blank + 1)..].Trim(), r.InRange(answer - 1, 2, "answer"));
    }

    public static MultipleChoiceItem? Generic(TaskRecord r)
    {
        if (r.Label("label") is not { } label) return null;
        var choices = r.Strings(r.Data, "choices");
        if (choices.Count < 2) throw new CheckpointFormatException($"{r.Where}: 'choices' needs at least two entries.");
        return MultipleChoiceItem.Create(r.String("context"), choices, r.InRange(label, choices.Count, "label"), r.OptionalString("delimiter") ?? " ");
    }

    /// <summary>LAMBADA (OpenAI/EleutherAI export): context = all but the last space-separated word; target = " " + last word.</summary>
    public static ClozeItem Lambada(TaskRecord r)
    {
        string text = r.String("text");
        int cut = text.LastIndexOf(' ');
        if (cut <= 0 || cut == text.Length - 1) throw new CheckpointFormatException($"{r.Where}: 'text' needs at least two space-separated words.");
        return new ClozeItem(text[..cut], " " + text[(cut + 1)..]);
    }

    /// <summary>ARC/OpenBookQA question: Hugging Face export ("question" string + "choices" {text, label}) or the original AllenAI JSONL ("question" {stem, choices [{text, label}]}).</summary>
    private static (string Stem, IReadOnlyList<string> Texts, IReadOnlyList<string> Labels) QuestionWithChoices(TaskRecord r, string key)
    {
        if (r.Data[key] is JsonObject original)
        {
            if (original["choices"] is not JsonArray list) throw new CheckpointFormatException($"{r.Where}: missing array field '{key}.choices'.");
            var choices = list.Select((c, i) => c as JsonObject ?? throw new CheckpointFormatException($"{r.Where}: '{key}.choices[{i}]' is not an object.")).ToArray();
            return (RecordFields.OptionalString(r, original, "stem") ?? throw new CheckpointFormatException($"{r.Where}: missing string field '{key}.stem'."),
                choices.Select(c => RecordFields.OptionalString(r, c, "text") ?? throw new CheckpointFormatException($"{r.Where}: a choice lacks 'text'.")).ToArray(),
                choices.Select(c => RecordFields.OptionalString(r, c, "label") ?? throw new CheckpointFormatException($"{r.Where}: a choice lacks 'label'.")).ToArray());
        }
        var hf = r.Object(r.Data, "choices");
        return (r.String(key), r.Strings(hf, "text"), r.Strings(hf, "label"));
    }

    private static MultipleChoiceItem? AnswerKeyItem(TaskRecord r, string context, IReadOnlyList<string> texts, IReadOnlyList<string> labels)
    {
        string? key = r.OptionalString("answerKey")?.Trim();
        if (string.IsNullOrEmpty(key)) return null;
        if (texts.Count != labels.Count) throw new CheckpointFormatException($"{r.Where}: {texts.Count} choice texts but {labels.Count} labels.");
        int index = labels.ToList().IndexOf(key);
        if (index < 0) throw new CheckpointFormatException($"{r.Where}: answerKey '{key}' is not one of the choice labels [{string.Join(", ", labels)}].");
        return MultipleChoiceItem.Create(context, texts, index);
    }

    /// <summary>Python's str.capitalize(): first character upper case, the rest lower case.</summary>
    internal static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>The harness's HellaSwag clean-up: strip, " [title]" → ". ", drop other [bracketed] artefacts, "  " → " ".</summary>
    internal static string Preprocess(string text)
    {
        text = text.Trim().Replace(" [title]", ". ", StringComparison.Ordinal);
        text = BracketPattern().Replace(text, "");
        return text.Replace("  ", " ", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\[.*?\]")]
    private static partial Regex BracketPattern();
}
