namespace ReplaceMe.Core.Tokenizers;

/// <summary>A token of <c>tokenizer.json</c>'s <c>added_tokens</c>: matched whole in the raw text before BPE.</summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">Its exact text.</param>
/// <param name="Special">Dropped when decoding with special tokens skipped.</param>
/// <param name="LeftStrip">Swallows whitespace on its left (<c>lstrip</c>).</param>
/// <param name="RightStrip">Swallows whitespace on its right (<c>rstrip</c>).</param>
/// <param name="SingleWord">Matches only when not inside a word (<c>single_word</c>).</param>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LeftStrip = false, bool RightStrip = false, bool SingleWord = false);
