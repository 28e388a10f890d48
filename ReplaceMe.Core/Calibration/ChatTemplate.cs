using System.Text;
using System.Text.Json;

namespace ReplaceMe.Core.Calibration;

/// <summary>
/// A plain role template that turns an instruction conversation into calibration text. The default renders
/// <c>"&lt;|user|&gt;\n{user}\n&lt;|assistant|&gt;\n{assistant}"</c> (plus a leading <c>"&lt;|system|&gt;\n{system}\n"</c>
/// block when a system turn is kept). Full Jinja chat templates are not interpreted: for calibration only the
/// distribution of the text matters, and the markers are ordinary text to the tokenizer.
/// </summary>
/// <param name="SystemPrefix">Text before a system turn.</param>
/// <param name="UserPrefix">Text before the user turn.</param>
/// <param name="AssistantPrefix">Text before the assistant turn.</param>
/// <param name="TurnSeparator">Text after each turn except the last.</param>
/// <param name="IncludeSystem">Keep the system turn (the reference code drops it).</param>
public sealed record ChatTemplate(
    string SystemPrefix = "<|system|>\n",
    string UserPrefix = "<|user|>\n",
    string AssistantPrefix = "<|assistant|>\n",
    string TurnSeparator = "\n",
    bool IncludeSystem = false)
{
    /// <summary>The default template (system turn dropped, like the reference code).</summary>
    public static ChatTemplate Default { get; } = new();

    /// <summary>Renders one exchange.</summary>
    public string Render(string? system, string user, string assistant)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(assistant);
        var sb = new StringBuilder();
        if (IncludeSystem && !string.IsNullOrWhiteSpace(system)) sb.Append(SystemPrefix).Append(system).Append(TurnSeparator);
        sb.Append(UserPrefix).Append(user).Append(TurnSeparator);
        sb.Append(AssistantPrefix).Append(assistant);
        return sb.ToString();
    }

    /// <summary>
    /// Renders a SlimOrca/ShareGPT-style <c>conversations</c> array (objects with <c>from</c> = system | human | gpt
    /// and <c>value</c>): the first human turn and the gpt turn that follows it, plus the system turn when
    /// <see cref="IncludeSystem"/> is set.
    /// </summary>
    /// <exception cref="FormatException">The array has no human turn followed by a gpt turn, or a turn lacks <c>from</c>/<c>value</c> strings.</exception>
    public string RenderConversation(JsonElement conversations)
    {
        if (conversations.ValueKind != JsonValueKind.Array)
            throw new FormatException($"A conversation must be a JSON array of turns, got {conversations.ValueKind}.");
        string? system = null, user = null;
        int index = 0;
        foreach (var turn in conversations.EnumerateArray())
        {
            if (turn.ValueKind != JsonValueKind.Object
                || !turn.TryGetProperty("from", out var from) || from.ValueKind != JsonValueKind.String
                || !turn.TryGetProperty("value", out var value) || value.ValueKind != JsonValueKind.String)
                throw new FormatException($"Turn {index} must be an object with string fields \"from\" and \"value\".");
            string role = from.GetString()!, text = value.GetString()!;
            switch (role)
            {
                case "system" when user is null: system ??= text; break;
                case "human" when user is null: user = text; break;
                case "gpt" when user is not null: return Render(system, user, text);
            }
            index++;
        }
        throw new FormatException("The conversation has no \"human\" turn followed by a \"gpt\" turn.");
    }
}
