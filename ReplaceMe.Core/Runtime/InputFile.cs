using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ReplaceMe.Core.Runtime;

/// <summary>
/// The one way the library opens a file it reads (config.json, tokenizer files, calibration and task files,
/// safetensors, the shard index, llama2.c files): what the path resolves to must be a regular file (a FIFO, character
/// or block device, socket or folder is refused before it is opened, so a FIFO cannot hang a run and <c>/dev/zero</c>
/// cannot fill memory; a symlink to a regular file is fine), and whole-file reads are capped per kind of file.
/// JSON read through <see cref="ParseJson"/> is also refused when an object names a key twice.
/// </summary>
/// <remarks>The caps are documented in docs/checkpoints.md ("What is read"); keep the two in step.</remarks>
internal static class InputFile
{
    /// <summary>config.json (real ones are a few KB).</summary>
    public const long ConfigJsonMaxBytes = 16L << 20;
    /// <summary>tokenizer_config.json (chat templates and thousands of added tokens stay under 2 MB).</summary>
    public const long TokenizerConfigMaxBytes = 16L << 20;
    /// <summary>tokenizer.json (the largest published ones are about 35 MB).</summary>
    public const long TokenizerJsonMaxBytes = 256L << 20;
    /// <summary>tokenizer.model, a SentencePiece protobuf (a few MB).</summary>
    public const long TokenizerModelMaxBytes = 256L << 20;
    /// <summary>model.safetensors.index.json (about 10 MB for the largest checkpoints).</summary>
    public const long ShardIndexMaxBytes = 64L << 20;
    /// <summary>A task file read whole (a JSON array or JSON lines).</summary>
    public const long TaskFileMaxBytes = 1L << 30;
    /// <summary>A llama.c tokenizer.bin.</summary>
    public const long Llama2cTokenizerMaxBytes = 64L << 20;
    /// <summary>One line of a calibration or text file (a JSON Lines record is one line).</summary>
    public const int MaxLineChars = 64 << 20;
    /// <summary>No cap: files that are streamed or memory-mapped (safetensors, calibration, Parquet, llama2.c weights).</summary>
    public const long Streamed = long.MaxValue;

    // System.Native's file-type bits (pal_io.h), the same values as Linux's and macOS's S_IF*.
    private const int TypeMask = 0xF000, Fifo = 0x1000, CharDevice = 0x2000, Directory = 0x4000, BlockDevice = 0x6000,
        Regular = 0x8000, Socket = 0xC000;

    /// <summary>Throws unless <paramref name="path"/> resolves to a regular file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the message ("Model config", "Calibration file").</param>
    /// <exception cref="FileNotFoundException">Nothing is at the path (or a symlink's target is missing).</exception>
    /// <exception cref="CheckpointFormatException">The path is a FIFO, device, socket or folder.</exception>
    public static void EnsureRegular(string path, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        int type = FileType(path, what);
        if (type == Regular) return;
        string kind = type switch
        {
            Fifo => "a FIFO (named pipe)",
            CharDevice => "a character device",
            BlockDevice => "a block device",
            Socket => "a socket",
            Directory => "a folder",
            _ => "not a regular file",
        };
        throw new CheckpointFormatException($"{what} '{path}' is {kind}; only regular files (or symlinks to them) are read.");
    }

    /// <summary>Opens a regular file for reading, refusing it up front when it is larger than <paramref name="maxBytes"/>.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the message ("Model config", "Calibration file").</param>
    /// <param name="maxBytes">The cap for this kind of file (<see cref="Streamed"/> for none).</param>
    /// <exception cref="FileNotFoundException">Nothing is at the path.</exception>
    /// <exception cref="CheckpointFormatException">Not a regular file, over the cap, or unreadable.</exception>
    public static FileStream OpenRegular(string path, long maxBytes, string what)
    {
        EnsureRegular(path, what);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException && ex is not FileNotFoundException)
        {
            throw new CheckpointFormatException($"{what} '{path}' could not be opened: {ex.Message}", ex);
        }
        if (stream.Length > maxBytes)
        {
            long length = stream.Length;
            stream.Dispose();
            throw new CheckpointFormatException($"{what} '{path}' is {length:N0} bytes, over the {maxBytes:N0}-byte limit for this kind of file.");
        }
        return stream;
    }

    /// <summary>Reads a whole regular file of at most <paramref name="maxBytes"/> bytes.</summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the message ("Model config", "Calibration file").</param>
    /// <param name="maxBytes">The cap for this kind of file.</param>
    /// <inheritdoc cref="OpenRegular" path="/exception"/>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        using var stream = OpenRegular(path, maxBytes, what);
        try
        {
            // The length was checked when opened; read no more than the cap even if the file grows meanwhile.
            using var buffer = new MemoryStream((int)Math.Min(stream.Length, int.MaxValue - 64));
            var chunk = new byte[1 << 16];
            long total = 0;
            int n;
            while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
            {
                total += n;
                if (total > maxBytes)
                    throw new CheckpointFormatException($"{what} '{path}' grew past the {maxBytes:N0}-byte limit while it was read.");
                buffer.Write(chunk, 0, n);
            }
            return buffer.ToArray();
        }
        catch (IOException ex)
        {
            throw new CheckpointFormatException($"{what} '{path}' could not be read: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Reads the lines of a regular file (UTF-8, a BOM honoured; "\n", "\r\n" and "\r" end a line, as
    /// <see cref="File.ReadLines(string)"/> does), refusing a line longer than <see cref="MaxLineChars"/> before it is
    /// held whole.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the message ("Model config", "Calibration file").</param>
    /// <param name="maxLineChars">The longest line accepted.</param>
    /// <exception cref="FileNotFoundException">Nothing is at the path.</exception>
    /// <exception cref="CheckpointFormatException">Not a regular file, or a line over the cap (the message names its number).</exception>
    public static IEnumerable<string> ReadLines(string path, string what, int maxLineChars = MaxLineChars)
    {
        using var stream = OpenRegular(path, Streamed, what);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var line = new StringBuilder();
        var buffer = new char[1 << 16];
        long lineNo = 1;
        bool afterCr = false;
        int n;
        while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < n; i++)
            {
                char c = buffer[i];
                if (c == '\n' && afterCr)
                {
                    afterCr = false;
                    start = i + 1;
                    continue;
                }
                afterCr = c == '\r';
                if (c is not ('\n' or '\r')) continue;
                Append(i);
                yield return line.ToString();
                line.Clear();
                lineNo++;
                start = i + 1;
            }
            Append(n);

            void Append(int end)
            {
                if (line.Length + (end - start) > maxLineChars)
                    throw new CheckpointFormatException($"{what} '{path}': line {lineNo} is longer than {maxLineChars:N0} characters.");
                line.Append(buffer, start, end - start);
            }
        }
        if (line.Length > 0) yield return line.ToString();
    }

    /// <summary>
    /// Parses a regular JSON file of at most <paramref name="maxBytes"/> bytes (a UTF-8 BOM is skipped), refusing
    /// invalid JSON and an object that names a key twice.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for the message ("Model config", "Calibration file").</param>
    /// <param name="maxBytes">The cap for this kind of file.</param>
    /// <param name="options">Parser options (comments, trailing commas, depth).</param>
    /// <exception cref="FileNotFoundException">Nothing is at the path.</exception>
    /// <exception cref="CheckpointFormatException">Not a regular file, over the cap, not valid JSON, or a duplicate key (named with its JSON path).</exception>
    public static JsonDocument ParseJson(string path, long maxBytes, string what, JsonDocumentOptions options = default)
    {
        var bytes = ReadAllBytes(path, maxBytes, what);
        var json = bytes.AsMemory();
        if (json.Span.StartsWith("\uFEFF"u8)) json = json[3..];
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, options);
        }
        catch (JsonException ex)
        {
            throw new CheckpointFormatException($"{what} '{path}' is not valid JSON: {ex.Message}", ex);
        }
        try
        {
            RefuseDuplicateKeys(doc.RootElement, $"{what} '{path}'");
        }
        catch
        {
            doc.Dispose();
            throw;
        }
        return doc;
    }

    /// <summary>Throws when any object in <paramref name="element"/> names a key twice (JSON leaves the meaning open;
    /// readers disagree on which value wins).</summary>
    /// <param name="element">The parsed value.</param>
    /// <param name="where">The file (and line) for the message.</param>
    /// <exception cref="CheckpointFormatException">A duplicate key; the message names it and where it is.</exception>
    public static void RefuseDuplicateKeys(JsonElement element, string where)
    {
        var path = new List<string>();
        Visit(element);

        void Visit(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    if (item.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                    {
                        path.Add($"[{i}]");
                        Visit(item);
                        path.RemoveAt(path.Count - 1);
                    }
                    i++;
                }
                return;
            }
            if (e.ValueKind != JsonValueKind.Object) return;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in e.EnumerateObject())
            {
                if (!seen.Add(p.Name))
                {
                    var inside = path.Count == 0 ? "the top-level object" : "'" + string.Concat(path).TrimStart('.') + "'";
                    throw new CheckpointFormatException($"{where}: key '{p.Name}' appears twice in {inside}.");
                }
                if (p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                {
                    path.Add("." + p.Name);
                    Visit(p.Value);
                    path.RemoveAt(path.Count - 1);
                }
            }
        }
    }

    private static int FileType(string path, string what)
    {
        if (OperatingSystem.IsWindows())
        {
            // No FIFOs or device nodes behind ordinary paths on Windows; folders and missing files are still told apart.
            if (System.IO.Directory.Exists(path)) return Directory;
            if (!File.Exists(path)) throw new FileNotFoundException($"{what} '{path}' does not exist.", path);
            return Regular;
        }
        var status = new byte[256]; // System.Native's FileStatus is about 120 bytes; Mode is the second int32
        var utf8 = Encoding.UTF8.GetBytes(path + "\0");
        int rc;
        try
        {
            rc = NativeStat(utf8, status);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // A host without the runtime's shim (NativeAOT links it statically): tell folders and missing files apart only.
            if (System.IO.Directory.Exists(path)) return Directory;
            if (!File.Exists(path)) throw new FileNotFoundException($"{what} '{path}' does not exist.", path);
            return Regular;
        }
        if (rc != 0)
        {
            if (!File.Exists(path) && !System.IO.Directory.Exists(path))
                throw new FileNotFoundException($"{what} '{path}' does not exist.", path);
            throw new CheckpointFormatException($"{what} '{path}' could not be examined (stat failed).");
        }
        return BitConverter.ToInt32(status, 4) & TypeMask; // stat follows symlinks: this is the target's type
    }

    // stat(2) through the runtime's own native shim, which every .NET install on Unix carries.
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int NativeStat(byte[] path, byte[] status);
}
