namespace ReplaceMe.Core.Tests.Packaging;

/// <summary>
/// Every C# block in docs/*.md must be, verbatim, one of the snippets compiled in samples/ReplaceMe.Snippets (which the
/// solution and this test project build), so no docs example can drift out of compiling.
/// </summary>
public class DocSnippetTests
{
    [Fact]
    public void Every_csharp_block_in_docs_is_a_compiled_snippet()
    {
        var compiled = DocSnippets.CompiledSnippets();
        Assert.True(compiled.Count >= 5, $"Expected the snippets project to hold the docs snippets, found {compiled.Count}.");
        var docs = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "docs"), "*.md");
        var missing = new List<string>();
        int blocks = 0;
        foreach (var doc in docs)
        {
            foreach (var block in DocSnippets.CodeBlocks(doc))
            {
                blocks++;
                if (!compiled.Values.Contains(block))
                    missing.Add($"{Path.GetFileName(doc)}: block starting '{block.Split('\n')[0]}'");
            }
        }
        Assert.True(blocks >= 5, $"Expected C# blocks in docs/, found {blocks}.");
        Assert.True(missing.Count == 0,
            "These C# blocks in docs/ are not snippets of samples/ReplaceMe.Snippets (copy them there between " +
            "'// <snippet:NAME>' markers so they compile, or fix the drift):\n" + string.Join("\n", missing));
    }

    [Fact]
    public void Snippet_extraction_handles_indentation_and_markers()
    {
        Assert.Equal("a\n  b", DocSnippets.Normalize("\n    a  \n      b\n\n"));
        var md = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".md");
        File.WriteAllText(md, "x\n```csharp\nvar a = 1;\n```\n```\nnot c#\n```\n```cs\nb();\n```\n");
        try { Assert.Equal(["var a = 1;", "b();"], DocSnippets.CodeBlocks(md)); }
        finally { File.Delete(md); }
    }

    [Fact]
    public void The_quick_start_in_getting_started_is_the_compiled_program()
    {
        var quickStart = DocSnippets.Snippet("quick-start").TrimEnd('\n');
        Assert.Contains(quickStart, DocSnippets.CodeBlocks(Path.Combine(TestPaths.RepoRoot, "docs", "getting-started.md")));
        Assert.Contains("new ReplaceMePruner().Prune(", quickStart, StringComparison.Ordinal);
    }
}
