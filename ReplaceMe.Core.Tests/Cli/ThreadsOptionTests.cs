using ReplaceMe.Core.Runtime;

namespace ReplaceMe.Core.Tests.Cli;

/// <summary><c>--threads</c> on every verb that computes: listed, checked at parse time, applied and restored.</summary>
public class ThreadsOptionTests
{
    [Theory]
    [InlineData("prune", "--calibration", "c.txt", "--blocks", "1")]
    [InlineData("profile", "--calibration", "c.txt")]
    [InlineData("evaluate")]
    [InlineData("generate")]
    [InlineData("demo", "--model-source", "/nonexistent/model")]
    public void Every_computing_verb_has_threads_and_refuses_a_negative_count(string verb, params string[] rest)
    {
        var help = CliRun.Run(verb, "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--threads", help.Out, StringComparison.Ordinal);
        var r = CliRun.Run([verb, .. verb == "demo" ? rest : ["--model", "/nonexistent/model", .. rest], "--threads", "-1"]);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("--threads must be ≥ 0", r.Error, StringComparison.Ordinal); // at parse time, before the model is opened
        Assert.DoesNotContain("/nonexistent/model", r.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_on_two_threads_gives_the_greedy_text_and_restores_the_thread_count()
    {
        int before = TorchThreads.Current;
        var r = CliRun.Run("generate", "--model", Stories15MTestModel.Shared.ModelDir, "--prompt", "Once upon a time", "--max-new-tokens", "40", "--threads", "2");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Stories15MTestModel.Greedy40 + Environment.NewLine, r.Out);
        Assert.Equal(before, TorchThreads.Current);
    }
}
