using ReplaceMe.Core.Checkpoints;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class OutputFolderTests
{
    [Fact]
    public void Builds_in_a_hidden_sibling_and_commit_moves_it_into_place()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("out", "pruned");
        using (var output = OutputFolder.Create(target, overwrite: false))
        {
            Assert.Equal(root.Combine("out"), Path.GetDirectoryName(output.Path));
            Assert.StartsWith(".pruned.tmp-", Path.GetFileName(output.Path));
            Assert.False(Directory.Exists(target));
            File.WriteAllText(Path.Combine(output.Path, "config.json"), "{}");
            output.Commit();
            Assert.False(Directory.Exists(output.Path));
            Assert.Throws<InvalidOperationException>(output.Commit);
        }
        Assert.Equal("{}", File.ReadAllText(Path.Combine(target, "config.json")));
        Assert.Equal([target], Directory.GetFileSystemEntries(root.Combine("out")));
    }

    [Fact]
    public void Dispose_without_commit_leaves_nothing()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("pruned");
        string temp;
        using (var output = OutputFolder.Create(target, overwrite: false))
        {
            temp = output.Path;
            Directory.CreateDirectory(Path.Combine(temp, "sub"));
            File.WriteAllText(Path.Combine(temp, "sub", "half-written.bin"), "x");
        }
        Assert.False(Directory.Exists(temp));
        Assert.False(Directory.Exists(target));
        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    [Fact]
    public void Existing_target_is_refused_without_overwrite_and_replaced_with_it()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("pruned");
        using (var first = OutputFolder.Create(target, overwrite: false))
        {
            File.WriteAllText(Path.Combine(first.Path, "old.txt"), "old");
            first.Commit();
        }

        var ex = Assert.Throws<IOException>(() => OutputFolder.Create(target, overwrite: false));
        Assert.Contains(target, ex.Message);
        Assert.Contains("--overwrite", ex.Message);
        Assert.Equal([target], Directory.GetFileSystemEntries(root.Path)); // nothing created

        using (var output = OutputFolder.Create(target, overwrite: true))
        {
            File.WriteAllText(Path.Combine(output.Path, "new.txt"), "new");
            Assert.True(File.Exists(Path.Combine(target, "old.txt"))); // old target intact until commit
            output.Commit();
        }
        Assert.Equal([OutputFolder.MarkerFileName, "new.txt"], Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal([target], Directory.GetFileSystemEntries(root.Path)); // no .old- leftovers
    }

    [Fact]
    public void Target_appearing_before_commit_is_not_clobbered()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("pruned");
        using var output = OutputFolder.Create(target, overwrite: false);
        Directory.CreateDirectory(target);
        Assert.Throws<IOException>(output.Commit);
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Fact]
    public void A_file_at_the_target_is_refused()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("pruned");
        File.WriteAllText(target, "x");
        Assert.Throws<IOException>(() => OutputFolder.Create(target, overwrite: true));
    }

    [Fact]
    public void Overwrite_never_replaces_a_folder_this_library_did_not_write()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("my-notes");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "thesis.tex"), "years of work");
        var ex = Assert.Throws<IOException>(() => OutputFolder.Create(target, overwrite: true));
        Assert.Contains("not written by ReplaceMe.Core", ex.Message);
        Assert.Equal("years of work", File.ReadAllText(Path.Combine(target, "thesis.tex")));
        Assert.Equal([target], Directory.GetFileSystemEntries(root.Path)); // no temporary folder either

        var empty = root.Combine("empty");
        Directory.CreateDirectory(empty);
        using var output = OutputFolder.Create(empty, overwrite: true);   // an empty folder may be replaced
        output.Commit();
        Assert.True(File.Exists(Path.Combine(empty, OutputFolder.MarkerFileName)));
    }

    [Fact]
    public void The_current_directory_and_the_source_model_folder_are_refused_as_targets()
    {
        using var root = TestPaths.NewTempDir();
        var model = root.Combine("models", "llama");
        Directory.CreateDirectory(model);
        File.WriteAllText(Path.Combine(model, "model.safetensors"), "weights");
        var before = Environment.CurrentDirectory;
        Environment.CurrentDirectory = root.Combine("models");
        try
        {
            // --out . and --out <parent of the model>: contains the current directory / the model.
            Assert.Contains("current directory", Assert.Throws<IOException>(() => OutputFolder.Create(".", overwrite: true)).Message);
            Assert.Contains("current directory", Assert.Throws<IOException>(() => OutputFolder.Create(root.Path, overwrite: true, [model])).Message);
            // --out <the model folder>, and a folder inside it.
            Assert.Contains("reads", Assert.Throws<IOException>(() => OutputFolder.Create(model, overwrite: true, [model])).Message);
            Assert.Contains("inside the model folder", Assert.Throws<IOException>(() => OutputFolder.Create(Path.Combine(model, "pruned"), overwrite: false, [model])).Message);
            // A sibling is fine.
            using var ok = OutputFolder.Create(root.Combine("models", "llama-pruned"), overwrite: false, [model]);
        }
        finally
        {
            Environment.CurrentDirectory = before;
        }
        Assert.Equal("weights", File.ReadAllText(Path.Combine(model, "model.safetensors")));
    }

    /// <summary>A hidden sibling as a killed run leaves it: a marker naming its writer, and some content.</summary>
    private static string Leftover(string parent, string name, string? marker)
    {
        var folder = Path.Combine(parent, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "model.safetensors"), "half-written");
        if (marker is not null) File.WriteAllText(Path.Combine(folder, OutputFolder.MarkerFileName), marker);
        return folder;
    }

    private static string Marker(string host, int pid, DateTime startedUtc) =>
        $$"""{"writer": "ReplaceMe.Core", "created_utc": "2026-01-01T00:00:00Z", "host": "{{host}}", "pid": {{pid}}, "process_start_utc": "{{startedUtc:o}}"}""";

    /// <summary>The pid and start time of a process that has exited.</summary>
    private static (int Pid, DateTime StartedUtc) DeadProcess()
    {
        // 'cat' waits on its stdin, so the process is certainly alive while its start time is read (a 'true' could
        // exit first under load, and StartTime of an exited process throws); closing stdin ends it.
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("cat") { UseShellExecute = false, RedirectStandardInput = true })!;
        var started = p.StartTime.ToUniversalTime();
        p.StandardInput.Close();
        p.WaitForExit();
        return (p.Id, started);
    }

    [Fact]
    public void A_later_run_removes_the_temp_folders_of_dead_runs_on_this_host_and_nothing_else()
    {
        using var root = TestPaths.NewTempDir();
        var (deadPid, deadStart) = DeadProcess();
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        var selfStart = self.StartTime.ToUniversalTime();
        var host = Environment.MachineName;

        var deadTemp = Leftover(root.Path, ".pruned.tmp-0001", Marker(host, deadPid, deadStart));
        var deadOld = Leftover(root.Path, ".pruned.old-0002", Marker(host, deadPid, deadStart));
        var reusedPid = Leftover(root.Path, ".pruned.tmp-0003", Marker(host, Environment.ProcessId, selfStart.AddHours(-1)));
        var live = Leftover(root.Path, ".pruned.tmp-0004", Marker(host, Environment.ProcessId, selfStart));
        var otherHost = Leftover(root.Path, ".pruned.tmp-0005", Marker(host + "-elsewhere", deadPid, deadStart));
        var noMarker = Leftover(root.Path, ".pruned.tmp-0006", null);
        var badMarker = Leftover(root.Path, ".pruned.tmp-0007", "{not json");
        var foreignWriter = Leftover(root.Path, ".pruned.tmp-0008", Marker(host, deadPid, deadStart).Replace("ReplaceMe.Core", "someone", StringComparison.Ordinal));
        var otherTarget = Leftover(root.Path, ".other.tmp-0009", Marker(host, deadPid, deadStart));
        var linkTarget = Leftover(root.Path, "elsewhere", Marker(host, deadPid, deadStart));
        var link = Path.Combine(root.Path, ".pruned.tmp-0010");
        Directory.CreateSymbolicLink(link, linkTarget);

        var log = new ListLogger();
        using (var output = OutputFolder.Create(root.Combine("pruned"), overwrite: false, logger: log))
        {
            Assert.Equal(new[] { deadTemp, deadOld, reusedPid }.Order(StringComparer.Ordinal), output.StaleFoldersRemoved.Order(StringComparer.Ordinal));
            output.Commit();
        }
        Assert.False(Directory.Exists(deadTemp));
        Assert.False(Directory.Exists(deadOld));
        Assert.False(Directory.Exists(reusedPid));
        foreach (var kept in new[] { live, otherHost, noMarker, badMarker, foreignWriter, otherTarget, linkTarget, link })
            Assert.True(File.Exists(Path.Combine(kept, "model.safetensors")), kept);
        Assert.Equal(3, log.Lines.Count(l => l.Contains("no longer exists", StringComparison.Ordinal)));
    }

    [Fact]
    public void The_marker_names_the_writing_process_and_host()
    {
        using var root = TestPaths.NewTempDir();
        var target = root.Combine("pruned");
        using (var output = OutputFolder.Create(target, overwrite: false))
            output.Commit();
        var marker = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(target, OutputFolder.MarkerFileName)))!;
        Assert.Equal("ReplaceMe.Core", (string?)marker["writer"]);
        Assert.Equal(Environment.MachineName, (string?)marker["host"]);
        Assert.Equal(Environment.ProcessId, (int)marker["pid"]!);
    }
}
