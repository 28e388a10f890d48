using System.Text.Json;
using ReplaceMe.Core.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace ReplaceMe.Core.Checkpoints;

/// <summary>
/// Memory-mapped reader of a safetensors checkpoint: one file, or shards listed by <c>model.safetensors.index.json</c>.
/// Every header is validated when the reader is opened, before any tensor byte is touched.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";
    /// <summary>File name of the shard index of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<MappedSafetensorsFile> _files;
    private readonly Dictionary<string, (SafetensorInfo Info, MappedSafetensorsFile File)> _tensors;
    private readonly string[] _names;
    private bool _disposed;

    private SafetensorsReader(string source, List<MappedSafetensorsFile> files, Dictionary<string, (SafetensorInfo, MappedSafetensorsFile)> tensors)
    {
        Source = source;
        _files = files;
        _tensors = tensors;
        _names = [.. tensors.Keys.Order(StringComparer.Ordinal)];
    }

    /// <summary>The path the reader was opened from (file, index or folder).</summary>
    public string Source { get; }

    /// <summary>All tensor names, in ordinal order.</summary>
    public IReadOnlyCollection<string> Names => _names;

    /// <summary>The <c>__metadata__</c> of the first file (e.g. <c>format</c>: <c>pt</c>); empty when absent.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _files.Count > 0 ? _files[0].Header.Metadata : new Dictionary<string, string>();

    /// <summary>
    /// Opens <paramref name="path"/>: a <c>.safetensors</c> file, a <c>model.safetensors.index.json</c>, or a folder
    /// holding either (the index wins). Validates every header.
    /// </summary>
    /// <exception cref="CheckpointFormatException">A file is missing, truncated or has an invalid header, or the index
    /// names a missing shard or a tensor its shard lacks. The message names the file and tensor.</exception>
    public static SafetensorsReader Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TorchRuntime.EnsureLoaded();
        if (Directory.Exists(path))
        {
            var index = Path.Combine(path, IndexFileName);
            var single = Path.Combine(path, SingleFileName);
            if (File.Exists(index)) return OpenSharded(index);
            if (File.Exists(single)) return OpenFiles(path, [single]);
            throw new CheckpointFormatException($"Checkpoint folder '{path}' contains neither {SingleFileName} nor {IndexFileName}.");
        }
        if (!File.Exists(path)) throw new CheckpointFormatException($"Checkpoint '{path}' does not exist (expected a .safetensors file, an index or a folder).");
        return path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase) ? OpenSharded(path) : OpenFiles(path, [path]);
    }

    /// <summary>Whether the checkpoint holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The header entry of a tensor.</summary>
    /// <exception cref="CheckpointFormatException">No such tensor.</exception>
    public SafetensorInfo GetInfo(string name) => Find(name).Info;

    /// <summary>
    /// Reads a tensor: built in its stored dtype from the mapped bytes, then converted to <paramref name="dtype"/> and
    /// moved to <paramref name="device"/> when given. The caller owns the result.
    /// </summary>
    /// <exception cref="CheckpointFormatException">No such tensor.</exception>
    public Tensor Read(string name, ScalarType? dtype = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        var (info, file) = Find(name);
        var stored = file.Read(info);
        bool sameType = dtype is null || dtype == stored.dtype;
        bool onCpu = device is null || device.type == DeviceType.CPU;
        if (sameType && onCpu) return stored;
        using (stored)
            return stored.to(dtype ?? stored.dtype, device ?? CPU);
    }

    /// <summary>Where a tensor's stored bytes are: its file, the absolute offset of its first byte, and the byte count.</summary>
    /// <exception cref="CheckpointFormatException">No such tensor.</exception>
    internal (string File, long Offset, long Bytes) Locate(string name)
    {
        var (info, file) = Find(name);
        return (file.Path, file.Header.DataStart + info.Begin, info.ByteCount);
    }

    /// <summary>The files this reader validated (one, or every shard), in ordinal order.</summary>
    internal IReadOnlyList<string> FilePaths => [.. _files.Select(f => f.Path)];

    /// <summary>Throws <see cref="SourceFileChangedException"/> when any file's size or modification time changed since
    /// the reader was opened (call it when done reading: each <see cref="Read"/> already checks its own file).</summary>
    internal void CheckUnchanged(string @while)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        foreach (var f in _files) f.CheckUnchanged(@while);
    }

    /// <summary>As <see cref="CheckUnchanged(string)"/> for the one file <paramref name="path"/> (a path of <see cref="FilePaths"/>).</summary>
    internal void CheckUnchanged(string path, string @while)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _files.First(f => f.Path == path).CheckUnchanged(@while);
    }

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var f in _files) f.Dispose();
    }

    private (SafetensorInfo Info, MappedSafetensorsFile File) Find(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _tensors.TryGetValue(name, out var e)
            ? e
            : throw new CheckpointFormatException($"Tensor '{name}' is missing from checkpoint '{Source}'.");
    }

    private static SafetensorsReader OpenFiles(string source, IReadOnlyList<string> paths)
    {
        var files = new List<MappedSafetensorsFile>();
        try
        {
            var tensors = new Dictionary<string, (SafetensorInfo, MappedSafetensorsFile)>(StringComparer.Ordinal);
            foreach (var p in paths)
            {
                var file = new MappedSafetensorsFile(p);
                files.Add(file);
                foreach (var (name, info) in file.Header.Tensors)
                {
                    if (tensors.TryGetValue(name, out var other))
                        throw new CheckpointFormatException($"Tensor '{name}' is stored twice: in '{other.Item2.Path}' and '{p}'.");
                    tensors.Add(name, (info, file));
                }
            }
            return new SafetensorsReader(source, files, tensors);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static SafetensorsReader OpenSharded(string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var shards = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(s => Path.Combine(folder, s)).ToList();
        foreach (var shard in shards)
            if (!File.Exists(shard))
                throw new CheckpointFormatException($"Shard '{shard}' named by '{indexPath}' does not exist.");
        var reader = OpenFiles(indexPath, shards);
        foreach (var (name, shard) in weightMap)
        {
            var expected = Path.Combine(folder, shard);
            if (!reader._tensors.TryGetValue(name, out var e) || e.File.Path != expected)
            {
                reader.Dispose();
                throw new CheckpointFormatException($"Tensor '{name}' is listed in '{indexPath}' under '{shard}' but that shard does not hold it.");
            }
        }
        return reader;
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument doc;
        try
        {
            doc = InputFile.ParseJson(indexPath, InputFile.ShardIndexMaxBytes, "Shard index");
        }
        catch (IOException ex)
        {
            throw new CheckpointFormatException($"Shard index '{indexPath}' could not be read: {ex.Message}", ex);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException($"Shard index '{indexPath}' must be an object with a 'weight_map' object.");
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                var shard = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : null;
                // Shards live beside the index; refuse paths that would leave the folder.
                if (string.IsNullOrEmpty(shard) || Path.GetFileName(shard) != shard || shard is "." or "..")
                    throw new CheckpointFormatException($"Shard index '{indexPath}': weight_map['{p.Name}'] must be a file name beside the index.");
                if (!result.TryAdd(p.Name, shard))
                    throw new CheckpointFormatException($"Shard index '{indexPath}': tensor '{p.Name}' is listed twice.");
            }
            return result;
        }
    }
}
