using System.Buffers.Binary;
using System.Text;

namespace ReplaceMe.Core.Runtime;

/// <summary>
/// Marks one version dependency (e.g. <c>GLIBCXX_3.4.32</c>) of an ELF64 little-endian shared object as weak
/// (<c>VER_FLG_WEAK</c>) in its <c>.gnu.version_r</c> section, so that the dynamic loader only notes a missing
/// version instead of refusing the library. Used on a private copy of <c>libLibTorchSharp.so</c>; see
/// <see cref="TorchRuntime"/>.
/// </summary>
internal static class ElfVersionPatcher
{
    private const ushort VerFlgWeak = 0x2;
    private const uint ShtGnuVerneed = 0x6ffffffe;

    /// <summary>Outcome of <see cref="MarkVersionWeak"/>.</summary>
    internal enum PatchResult { Patched, AlreadyWeak, VersionNotReferenced }

    /// <summary>Sets the weak flag on every Vernaux entry named <paramref name="version"/>; edits <paramref name="elf"/> in place.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a well-formed ELF64 little-endian object.</exception>
    internal static PatchResult MarkVersionWeak(byte[] elf, string version)
    {
        ArgumentNullException.ThrowIfNull(elf);
        var span = elf.AsSpan();
        if (elf.Length < 64 || span[0] != 0x7f || span[1] != (byte)'E' || span[2] != (byte)'L' || span[3] != (byte)'F')
            throw new InvalidDataException("Not an ELF file (bad magic).");
        if (span[4] != 2 || span[5] != 1)
            throw new InvalidDataException("Only ELF64 little-endian objects are supported.");

        ulong shoff = BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        ushort shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        ushort shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        if (shentsize < 64 || shoff == 0 || shoff + (ulong)shentsize * shnum > (ulong)elf.Length)
            throw new InvalidDataException("ELF section header table lies outside the file.");

        bool found = false, changed = false;
        for (int s = 0; s < shnum; s++)
        {
            var sh = span.Slice(checked((int)shoff + s * shentsize), 64);
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            ulong size = BinaryPrimitives.ReadUInt64LittleEndian(sh[0x20..]);
            uint link = BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(sh[0x2C..]); // sh_info = number of Verneed entries
            if (offset + size > (ulong)elf.Length || link >= shnum)
                throw new InvalidDataException(".gnu.version_r section lies outside the file.");
            var strSh = span.Slice(checked((int)shoff + (int)link * shentsize), 64);
            ulong strOff = BinaryPrimitives.ReadUInt64LittleEndian(strSh[0x18..]);
            ulong strSize = BinaryPrimitives.ReadUInt64LittleEndian(strSh[0x20..]);
            if (strOff + strSize > (ulong)elf.Length)
                throw new InvalidDataException("Dynamic string table lies outside the file.");

            // Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32 (16 bytes)
            // Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32 (16 bytes)
            ulong vn = offset;
            for (uint i = 0; i < count; i++)
            {
                if (vn + 16 > offset + size) throw new InvalidDataException("Truncated Verneed record.");
                var need = span.Slice((int)vn, 16);
                ushort cnt = BinaryPrimitives.ReadUInt16LittleEndian(need[2..]);
                uint aux = BinaryPrimitives.ReadUInt32LittleEndian(need[8..]);
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(need[12..]);
                ulong va = vn + aux;
                for (int j = 0; j < cnt; j++)
                {
                    if (va + 16 > offset + size) throw new InvalidDataException("Truncated Vernaux record.");
                    var a = span.Slice((int)va, 16);
                    uint name = BinaryPrimitives.ReadUInt32LittleEndian(a[8..]);
                    if (ReadCString(span, strOff, strSize, name) == version)
                    {
                        found = true;
                        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(a[4..]);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            BinaryPrimitives.WriteUInt16LittleEndian(a[4..], (ushort)(flags | VerFlgWeak));
                            changed = true;
                        }
                    }
                    uint anext = BinaryPrimitives.ReadUInt32LittleEndian(a[12..]);
                    if (anext == 0) break;
                    va += anext;
                }
                if (next == 0) break;
                vn += next;
            }
        }
        return !found ? PatchResult.VersionNotReferenced : changed ? PatchResult.Patched : PatchResult.AlreadyWeak;
    }

    private static string ReadCString(ReadOnlySpan<byte> span, ulong tableOffset, ulong tableSize, uint index)
    {
        if (index >= tableSize) throw new InvalidDataException("Version name index lies outside the string table.");
        var rest = span.Slice((int)(tableOffset + index), (int)(tableSize - index));
        int end = rest.IndexOf((byte)0);
        if (end < 0) throw new InvalidDataException("Unterminated string in the dynamic string table.");
        return Encoding.ASCII.GetString(rest[..end]);
    }
}
