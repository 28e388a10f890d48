using ReplaceMe.Core.Tests.Cli;

namespace ReplaceMe.Core.Tests.Gguf;

/// <summary><c>replaceme export-gguf</c> and <c>prune --gguf</c>: files written, errors before work.</summary>
public class ExportGgufCliTests
{
    private static Stories15MTestModel Fixture => Stories15MTestModel.Shared;

    [Fact]
    public void Export_gguf_writes_a_q8_0_file_and_refuses_an_existing_one()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("m.gguf");
        var r = CliRun.Run("export-gguf", "--model", Fixture.ModelDir, "--out", path, "--dtype", "q8_0");
        Assert.True(r.ExitCode == 0, r.Error);
        Assert.StartsWith("wrote ", r.Out);
        var g = new GgufTestReader(path);
        Assert.Equal(7u, g.Get<uint>("general.file_type"));
        Assert.Equal("stories15M", g.Get<string>("general.name"));

        var again = CliRun.Run("export-gguf", "--model", Fixture.ModelDir, "--out", path);
        CliRun.AssertOneLineError(again, "already exists");
        CliRun.AssertOneLineError(CliRun.Run("export-gguf", "--model", Fixture.ModelDir, "--out", dir.Path), "is a folder");
        Assert.NotEqual(0, CliRun.Run("export-gguf", "--model", Fixture.ModelDir, "--out", dir.Combine("x.gguf"), "--dtype", "q4_0").ExitCode);
        Assert.False(File.Exists(dir.Combine("x.gguf")));
    }

    [Fact]
    public void Prune_gguf_errors_come_before_any_work()
    {
        using var dir = TestPaths.NewTempDir();
        var existing = dir.Combine("old.gguf");
        File.WriteAllText(existing, "keep");
        var r = CliRun.RunWithin(TimeSpan.FromSeconds(60), "prune", "--model", Fixture.ModelDir, "--blocks", "1", "--self-generated", "4", "--gguf", existing);
        CliRun.AssertOneLineError(r, "already exists");
        Assert.Equal("keep", File.ReadAllText(existing));
        var dtypeAlone = CliRun.Run("prune", "--model", Fixture.ModelDir, "--blocks", "1", "--self-generated", "4", "--gguf-dtype", "f32");
        Assert.NotEqual(0, dtypeAlone.ExitCode);
        Assert.Contains("--gguf-dtype is only used with --gguf", dtypeAlone.Error);
    }
}
