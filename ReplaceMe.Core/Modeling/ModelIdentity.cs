using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ReplaceMe.Core.Checkpoints;

namespace ReplaceMe.Core.Modeling;

/// <summary>
/// A cheap fingerprint of a Hugging Face model folder, used to refuse statistics computed on another model: SHA-256 over
/// the normalised <c>config.json</c>, every tensor's name, dtype and shape, the stored bytes of every 1-D tensor (norm
/// weights, biases) and the first and last 4 KiB of every larger tensor. It reads a few kilobytes per tensor, not the
/// weights, so it tells fine-tunes of one architecture apart without hashing gigabytes.
/// </summary>
public static class ModelIdentity
{
    private const int SampleBytes = 4096;

    /// <summary>The fingerprint of <paramref name="modelDir"/> as 64 lowercase hex digits.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The config or the safetensors are missing or malformed.</exception>
    /// <exception cref="UnsupportedModelException">The model type is not supported.</exception>
    public static string Of(string modelDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        var full = Path.GetFullPath(modelDir);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Model folder '{full}' does not exist.");
        var config = ModelConfigJson.Load(Path.Combine(full, HfCheckpointFolder.ConfigFileName));
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes(ModelConfigJson.ToJson(config).ToJsonString(new JsonSerializerOptions { WriteIndented = false })));
        using var reader = SafetensorsReader.Open(full);
        var handles = new Dictionary<string, Microsoft.Win32.SafeHandles.SafeFileHandle>(StringComparer.Ordinal);
        try
        {
            var buffer = new byte[SampleBytes];
            foreach (var name in reader.Names) // ordinal order
            {
                var info = reader.GetInfo(name);
                hash.AppendData(Encoding.UTF8.GetBytes($"\n{name}|{info.DType}|{string.Join(",", info.Shape)}"));
                var (file, offset, bytes) = reader.Locate(name);
                if (!handles.TryGetValue(file, out var handle))
                    handles[file] = handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
                // A 1-D tensor (norm weights, biases) whole; of a larger one its first and last SampleBytes.
                var ranges = info.Shape.Count <= 1 || bytes <= 2 * SampleBytes
                    ? [(offset, bytes)]
                    : new[] { (offset, (long)SampleBytes), (offset + bytes - SampleBytes, (long)SampleBytes) };
                foreach (var (start, length) in ranges)
                    for (long done = 0; done < length;)
                    {
                        int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done)), start + done);
                        if (n <= 0) throw new CheckpointFormatException($"Safetensors file '{file}' ended inside tensor '{name}'.");
                        hash.AppendData(buffer, 0, n);
                        done += n;
                    }
            }
        }
        finally
        {
            foreach (var h in handles.Values) h.Dispose();
        }
        return Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant();
    }
}
