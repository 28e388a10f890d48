using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Tokenizers;

namespace ReplaceMe.Core.Tests.Tokenizers;

public class PreTokenSplitTests
{
    // The Split pattern of Llama 3.x's tokenizer.json, verbatim.
    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static List<string> Split(string pattern, string text, bool remove = false)
    {
        var pieces = new List<string>();
        new PreTokenSplit(pattern, remove).Split(text, pieces);
        return pieces;
    }

    [Fact]
    public void Llama3_pattern_splits_as_derived_by_hand()
    {
        // Digits in groups of at most three; punctuation keeps trailing newlines; a space run gives its last space to the word.
        Assert.Equal(["Hello", " world", "'S", " ", "123", "45", " ok", "!!\n\n", " ", " x"],
            Split(Llama3Pattern, "Hello world'S 12345 ok!!\n\n  x"));
    }

    [Fact]
    public void Gpt2_pattern_keeps_digit_runs_and_leading_spaces()
    {
        // \s+(?!\S) takes the whitespace run minus its last space, newlines included.
        Assert.Equal(["Hello", " world", "'s", " 12345", " ok", "!!", "\n\n ", " x"],
            Split(PreTokenSplit.Gpt2Pattern, "Hello world's 12345 ok!!\n\n  x"));
    }

    [Fact]
    public void Removed_behavior_drops_the_matches()
    {
        Assert.Equal(["a", "b", "c"], Split(@"\s+", "a  b\tc", remove: true));
    }
}
