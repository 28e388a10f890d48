using System.Text;
using ReplaceMe.Core.Checkpoints;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Modeling;

internal static partial class HfCheckpointFolder
{
    /// <summary>Upper bound of the safetensors header and index bytes per tensor (name, dtype, shape, offsets; index entry).</summary>
    internal const long HeaderBytesPerTensor = 512;

    /// <summary>Bytes of the companion files a save copies from <paramref name="sourceDir"/> (see <see cref="CopyCompanionFiles"/>); 0 for none.</summary>
    internal static long CompanionBytes(string? sourceDir)
    {
        if (sourceDir is null || !Directory.Exists(sourceDir)) return 0;
        long bytes = 0;
        foreach (var file in Directory.EnumerateFiles(sourceDir))
        {
            var name = Path.GetFileName(file);
            if (IsReplacedBySave(name) || CompanionProblem(sourceDir, file) is not null) continue;
            var info = new FileInfo(file);
            bytes += (info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info).Length;
        }
        return bytes;
    }

    /// <summary>
    /// What a save writes, for the free-space check made before it starts: tensor bytes (in the storage dtype), a bound
    /// on headers and the index, the config, the companion files, the extra files and the extra tensor files.
    /// </summary>
    internal static long ExpectedBytes(long tensorBytes, int tensorCount, string configJson, string? sourceDir, SaveOptions options) =>
        ExpectedBytes(tensorBytes, tensorCount, configJson, sourceDir, options.ExtraFiles, options.ExtraTensorFiles);

    /// <summary>As the <see cref="SaveOptions"/> overload, with the extra files given directly.</summary>
    internal static long ExpectedBytes(long tensorBytes, int tensorCount, string configJson, string? sourceDir,
        IReadOnlyDictionary<string, string> extraFiles, IReadOnlyDictionary<string, IReadOnlyList<KeyValuePair<string, Tensor>>> extraTensorFiles)
    {
        long bytes = tensorBytes + tensorCount * HeaderBytesPerTensor + Encoding.UTF8.GetByteCount(configJson) + CompanionBytes(sourceDir);
        foreach (var text in extraFiles.Values) bytes += Encoding.UTF8.GetByteCount(text);
        foreach (var tensors in extraTensorFiles.Values)
            foreach (var (_, t) in tensors)
                bytes += t.numel() * t.element_size() + HeaderBytesPerTensor;
        return bytes;
    }

    /// <summary>Bytes of <paramref name="stateDict"/> as a save stores it (floating-point tensors in <paramref name="storage"/> when given).</summary>
    internal static long StoredBytes(IEnumerable<KeyValuePair<string, Tensor>> stateDict, ScalarType? storage) =>
        stateDict.Sum(kv => kv.Value.numel() * (storage is ScalarType s && kv.Value.is_floating_point() ? ElementSize(s) : kv.Value.element_size()));

    private static long ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        _ => 2,
    };
}
