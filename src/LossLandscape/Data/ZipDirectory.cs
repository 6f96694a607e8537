using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace LossLandscape.Data;

/// <summary>
/// The entries of a ZIP file (an <c>.npz</c> is one), read from its central directory, with where each entry's data
/// begins in the file, so that an entry stored without compression is read at any offset without reading what is
/// before it. ZIP64 sizes and offsets (NumPy writes them) are read.
/// </summary>
internal static class ZipDirectory
{
    /// <summary>One entry: its name, its compression method (0 stored, 8 deflate), its sizes and the file offset of its data.</summary>
    public sealed record Entry(string Name, int Method, long CompressedSize, long Size, long DataOffset);

    private const uint EndSignature = 0x06054b50, End64Signature = 0x06064b50, End64LocatorSignature = 0x07064b50;
    private const uint CentralSignature = 0x02014b50, LocalSignature = 0x04034b50;

    /// <summary>The entries of the ZIP file open as <paramref name="file"/>.</summary>
    /// <exception cref="DataFormatException">Not a ZIP file, an encrypted entry, or a directory that runs past the file.</exception>
    public static IReadOnlyList<Entry> Read(SafeFileHandle file, string what)
    {
        long length = RandomAccess.GetLength(file);
        int tail = (int)Math.Min(length, 22 + 65535);
        var end = new byte[tail];
        ReadExactly(file, end, length - tail, what);
        int at = -1;
        for (int k = tail - 22; k >= 0; k--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(k)) == EndSignature)
            {
                at = k;
                break;
            }
        }
        if (at < 0)
        {
            throw new DataFormatException($"{what}: not a ZIP archive (an .npz file is one; no end-of-directory record)");
        }
        long count = BinaryPrimitives.ReadUInt16LittleEndian(end.AsSpan(at + 10));
        long directorySize = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(at + 12));
        long directoryOffset = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(at + 16));
        if ((count == 0xFFFF || directoryOffset == 0xFFFFFFFF || directorySize == 0xFFFFFFFF) && at >= 20
            && BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(at - 20)) == End64LocatorSignature)
        {
            long end64 = BinaryPrimitives.ReadInt64LittleEndian(end.AsSpan(at - 20 + 8));
            var record = new byte[56];
            ReadExactly(file, record, end64, what);
            if (BinaryPrimitives.ReadUInt32LittleEndian(record) != End64Signature)
            {
                throw new DataFormatException($"{what}: the ZIP64 end-of-directory record is missing");
            }
            count = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(32));
            directorySize = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(40));
            directoryOffset = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(48));
        }
        if (directoryOffset < 0 || directorySize < 0 || directoryOffset + directorySize > length || directorySize > int.MaxValue)
        {
            throw new DataFormatException($"{what}: the ZIP directory lies outside the file");
        }
        var directory = new byte[directorySize];
        ReadExactly(file, directory, directoryOffset, what);
        var entries = new List<Entry>();
        int p = 0;
        for (long i = 0; i < count; i++)
        {
            if (p + 46 > directory.Length || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p)) != CentralSignature)
            {
                throw new DataFormatException($"{what}: the ZIP directory is damaged at entry {i}");
            }
            var h = directory.AsSpan(p);
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            long local = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            if (p + 46 + nameLength + extraLength > directory.Length)
            {
                throw new DataFormatException($"{what}: the ZIP directory is damaged at entry {i}");
            }
            string name = ((flags & 0x800) != 0 ? Encoding.UTF8 : Encoding.Latin1).GetString(h.Slice(46, nameLength));
            // ZIP64: the sizes and the offset that are 0xFFFFFFFF in the header follow, in this order, in extra field 1.
            var extra = h.Slice(46 + nameLength, extraLength);
            for (int e = 0; e + 4 <= extra.Length;)
            {
                int id = BinaryPrimitives.ReadUInt16LittleEndian(extra[e..]);
                int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[(e + 2)..]);
                if (id == 1)
                {
                    int q = e + 4;
                    if (size == 0xFFFFFFFF && q + 8 <= extra.Length) { size = BinaryPrimitives.ReadInt64LittleEndian(extra[q..]); q += 8; }
                    if (compressed == 0xFFFFFFFF && q + 8 <= extra.Length) { compressed = BinaryPrimitives.ReadInt64LittleEndian(extra[q..]); q += 8; }
                    if (local == 0xFFFFFFFF && q + 8 <= extra.Length) { local = BinaryPrimitives.ReadInt64LittleEndian(extra[q..]); }
                }
                e += 4 + len;
            }
            if ((flags & 1) != 0)
            {
                throw new DataFormatException($"{what}: entry '{name}' is encrypted");
            }
            var localHeader = new byte[30];
            ReadExactly(file, localHeader, local, what);
            if (BinaryPrimitives.ReadUInt32LittleEndian(localHeader) != LocalSignature)
            {
                throw new DataFormatException($"{what}: entry '{name}' has no local header where the directory says");
            }
            long data = local + 30 + BinaryPrimitives.ReadUInt16LittleEndian(localHeader.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(localHeader.AsSpan(28));
            if (data + compressed > length)
            {
                throw new DataFormatException($"{what}: entry '{name}' runs past the end of the file (is it cut short?)");
            }
            entries.Add(new Entry(name, method, compressed, size, data));
            p += 46 + nameLength + extraLength + commentLength;
        }
        return entries;
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>, or refuses a file cut short.</summary>
    public static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset, string what)
    {
        while (buffer.Length > 0)
        {
            int read = RandomAccess.Read(file, buffer, offset);
            if (read <= 0)
            {
                throw new DataFormatException($"{what}: the file ends before the data it describes (is it cut short, or did it change while it was read?)");
            }
            buffer = buffer[read..];
            offset += read;
        }
    }
}
