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
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "old.txt"), "old");

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
        Assert.Equal(["new.txt"], Directory.GetFiles(target).Select(Path.GetFileName));
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
}
