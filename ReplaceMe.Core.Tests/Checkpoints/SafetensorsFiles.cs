using System.Buffers.Binary;
using System.Text;

namespace ReplaceMe.Core.Tests.Checkpoints;

/// <summary>Builds safetensors files byte by byte, so that tests can write any (broken) header.</summary>
internal static class SafetensorsFiles
{
    public static byte[] Build(string headerJson, int dataBytes, ulong? lengthOverride = null) =>
        Build(Encoding.UTF8.GetBytes(headerJson), dataBytes, lengthOverride);

    public static byte[] Build(byte[] header, int dataBytes, ulong? lengthOverride = null)
    {
        var file = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, lengthOverride ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        for (int i = 0; i < dataBytes; i++) file[8 + header.Length + i] = (byte)(i * 37);
        return file;
    }

    /// <summary>A valid two-tensor file: "a" F32 [2,2] at [0,16], "b" F16 [4] at [16,24].</summary>
    public const string ValidHeader =
        """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F16","shape":[4],"data_offsets":[16,24]}}""";

    public const int ValidDataBytes = 24;
}
