using System.Text.Json;
using ReplaceMe.Core.Checkpoints;
using ReplaceMe.Core.Runtime;
using TorchSharp;

namespace ReplaceMe.Core.Tests.Checkpoints;

public class SafetensorsCorruptionTests
{
    public SafetensorsCorruptionTests() => TorchRuntime.EnsureLoaded();

    private static CheckpointFormatException OpenFails(byte[] file, params string[] mustMention)
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("model.safetensors");
        File.WriteAllBytes(path, file);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(path).Dispose());
        Assert.Contains(path, ex.Message);
        foreach (var s in mustMention) Assert.Contains(s, ex.Message);
        return ex;
    }

    private static string Header(string a, string b = """{"dtype":"F16","shape":[4],"data_offsets":[16,24]}""") =>
        $$"""{"a":{{a}},"b":{{b}}}""";

    [Fact]
    public void The_valid_reference_file_opens()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.Combine("x.safetensors");
        File.WriteAllBytes(path, SafetensorsFiles.Build(SafetensorsFiles.ValidHeader, SafetensorsFiles.ValidDataBytes));
        using var r = SafetensorsReader.Open(path);
        Assert.Equal(["a", "b"], r.Names);
        using var a = r.Read("a");
        Assert.Equal(new long[] { 2, 2 }, a.shape);
    }

    [Fact]
    public void Empty_and_short_files_are_truncated() 
    {
        OpenFails([], "truncated");
        OpenFails([1, 0, 0], "truncated");
    }

    [Fact]
    public void Huge_header_length_is_refused_before_allocation()
    {
        OpenFails(SafetensorsFiles.Build("{}", 0, lengthOverride: ulong.MaxValue), "limit");
        OpenFails(SafetensorsFiles.Build("{}", 0, lengthOverride: 1UL << 40), "limit");
        OpenFails(SafetensorsFiles.Build("{}", 0, lengthOverride: 50_000_000), "truncated"); // under the cap, past the end
    }

    [Theory]
    [InlineData("{\"a\": ")]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("\"string\"")]
    [InlineData("{\"a\": 5}")]
    [InlineData("{\"__metadata__\": {\"format\": 1}}")]
    [InlineData("{\"__metadata__\": []}")]
    public void Bad_json_or_shape_of_json_is_refused(string header) => OpenFails(SafetensorsFiles.Build(header, 0));

    [Fact]
    public void Invalid_utf8_is_refused() => OpenFails(SafetensorsFiles.Build([(byte)'{', 0xC3, 0x28, (byte)'}'], 0), "UTF-8");

    [Fact]
    public void Overlapping_ranges_are_refused() =>
        OpenFails(SafetensorsFiles.Build(Header("""{"dtype":"F32","shape":[4],"data_offsets":[0,16]}""",
            """{"dtype":"F32","shape":[2],"data_offsets":[12,20]}"""), 24), "overlap", "'a'", "'b'");

    [Fact]
    public void Out_of_range_offsets_are_refused() =>
        OpenFails(SafetensorsFiles.Build(Header("""{"dtype":"F32","shape":[16],"data_offsets":[0,64]}"""), 24), "'a'", "data section");

    [Fact]
    public void Reversed_offsets_are_refused() =>
        OpenFails(SafetensorsFiles.Build(Header("""{"dtype":"F32","shape":[0],"data_offsets":[16,0]}"""), 24), "'a'", "order");

    [Fact]
    public void Size_shape_mismatch_is_refused() =>
        OpenFails(SafetensorsFiles.Build(Header("""{"dtype":"F32","shape":[3],"data_offsets":[0,16]}"""), 24), "'a'", "needs 12");

    [Theory]
    [InlineData("F8_E4M3")]
    [InlineData("Q4_K")]
    [InlineData("f32")]
    public void Unknown_dtype_is_refused(string dtype) =>
        OpenFails(SafetensorsFiles.Build(Header($$"""{"dtype":"{{dtype}}","shape":[4],"data_offsets":[0,16]}"""), 24), "'a'", dtype);

    [Theory]
    [InlineData("""{"shape":[4],"data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","shape":[4]}""")]
    [InlineData("""{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","shape":[4.5],"data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","shape":"4","data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}""")]
    [InlineData("""{"dtype":"F32","shape":[4],"data_offsets":[-16,0]}""")]
    [InlineData("""{"dtype":7,"shape":[4],"data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,16]}""")]
    [InlineData("""{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}""")]
    public void Malformed_entries_are_refused(string entry) =>
        OpenFails(SafetensorsFiles.Build(Header(entry), 24), "'a'");

    [Fact]
    public void A_gap_between_tensors_is_refused()
    {
        // "a" [0, 16), then 4 bytes nobody owns, then "b" [20, 28).
        var header = Header("""{"dtype":"F32","shape":[4],"data_offsets":[0,16]}""", """{"dtype":"F16","shape":[4],"data_offsets":[20,28]}""");
        OpenFails(SafetensorsFiles.Build(header, 28), "[16, 20)", "belong to no tensor");
    }

    [Fact]
    public void Bytes_after_the_last_tensor_are_refused() =>
        OpenFails(SafetensorsFiles.Build(SafetensorsFiles.ValidHeader, SafetensorsFiles.ValidDataBytes + 8), "end at byte 24", "32 data bytes");

    [Fact]
    public void A_header_length_a_few_bytes_short_is_refused_not_read_shifted()
    {
        // Writers pad the header with spaces; a length 4 short still parses as JSON but moves the data section 4 bytes
        // early, so every tensor would be read shifted. The 4 stray bytes must be caught as untiled data.
        var padded = SafetensorsFiles.ValidHeader + "    ";
        var file = SafetensorsFiles.Build(padded, SafetensorsFiles.ValidDataBytes, lengthOverride: (ulong)padded.Length - 4);
        OpenFails(file, "end at byte 24", "28 data bytes");
    }

    [Fact]
    public void A_header_that_does_not_start_with_a_brace_is_refused() =>
        OpenFails(SafetensorsFiles.Build(" " + SafetensorsFiles.ValidHeader, SafetensorsFiles.ValidDataBytes), "does not start with '{'");

    [Fact]
    public void Duplicate_tensor_names_are_refused() =>
        OpenFails(SafetensorsFiles.Build("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2), "'a'");

    [Fact]
    public void Truncated_data_section_is_refused()
    {
        var file = SafetensorsFiles.Build(SafetensorsFiles.ValidHeader, SafetensorsFiles.ValidDataBytes);
        OpenFails(file[..^3], "'b'");
    }

    [Fact]
    public void Missing_file_folder_and_tensor_are_reported()
    {
        using var dir = TestPaths.NewTempDir();
        Assert.Contains(dir.Path, Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(dir.Path)).Message);
        var missing = dir.Combine("nope.safetensors");
        Assert.Contains(missing, Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(missing)).Message);

        File.WriteAllBytes(dir.Combine("model.safetensors"), SafetensorsFiles.Build(SafetensorsFiles.ValidHeader, SafetensorsFiles.ValidDataBytes));
        using var r = SafetensorsReader.Open(dir.Path);
        Assert.False(r.Contains("model.embed_tokens.weight"));
        var ex = Assert.Throws<CheckpointFormatException>(() => r.Read("model.embed_tokens.weight"));
        Assert.Contains("model.embed_tokens.weight", ex.Message);
        Assert.Throws<CheckpointFormatException>(() => r.GetInfo("zzz"));
    }

    [Fact]
    public void Sharded_index_problems_are_reported()
    {
        using var dir = TestPaths.NewTempDir();
        using (var a = torch.ones(4))
        using (var b = torch.zeros(4))
            SafetensorsWriter.Write(dir.Path, [new("a", a), new("b", b)], maxShardBytes: 16);
        var indexPath = dir.Combine("model.safetensors.index.json");
        var good = File.ReadAllText(indexPath);
        using (var r = SafetensorsReader.Open(dir.Path)) Assert.Equal(2, r.Names.Count);

        void Expect(string indexJson, string mention)
        {
            File.WriteAllText(indexPath, indexJson);
            var ex = Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(dir.Path).Dispose());
            Assert.Contains(mention, ex.Message);
        }

        Expect(good.Replace("model-00002-of-00002", "model-00009-of-00009"), "model-00009-of-00009.safetensors");
        Expect("""{"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}""", "'c'");
        Expect("""{"weight_map":{"a":"../model-00001-of-00002.safetensors"}}""", "weight_map['a']");
        Expect("""{"weight_map":{"a":"model-00002-of-00002.safetensors"}}""", "'a'");
        Expect("""{"metadata":{}}""", "weight_map");
        Expect("{", indexPath);
        File.Delete(indexPath);
        Assert.Throws<CheckpointFormatException>(() => SafetensorsReader.Open(indexPath));
    }
}
