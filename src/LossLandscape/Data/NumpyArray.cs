using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LossLandscape.Data;

/// <summary>The element types of a NumPy array the data sources read: floats, signed and unsigned integers, and booleans.</summary>
internal enum NumpyKind
{
    /// <summary>IEEE float of 2, 4 or 8 bytes (<c>f</c>).</summary>
    Float,

    /// <summary>Two's-complement integer of 1, 2, 4 or 8 bytes (<c>i</c>).</summary>
    Signed,

    /// <summary>Unsigned integer of 1, 2, 4 or 8 bytes (<c>u</c>).</summary>
    Unsigned,

    /// <summary>One byte, 0 or 1 (<c>b</c>).</summary>
    Bool,
}

/// <summary>
/// The header of one array in NumPy's <c>.npy</c> format (versions 1 to 3): its element type, its shape, and where its
/// C-ordered values begin; and the exact conversion of its elements to float64.
/// </summary>
/// <param name="Kind">The element kind.</param>
/// <param name="ItemSize">Bytes per element.</param>
/// <param name="BigEndian">Whether multi-byte elements are big-endian (<c>&gt;</c>).</param>
/// <param name="Shape">The array's shape (empty for a scalar).</param>
/// <param name="HeaderBytes">Bytes from the start of the entry to its first value.</param>
internal sealed record NumpyArray(NumpyKind Kind, int ItemSize, bool BigEndian, long[] Shape, int HeaderBytes)
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>The number of elements (the product of the shape).</summary>
    public long Length => Shape.Aggregate(1L, (a, b) => checked(a * b));

    /// <summary>Whether the elements are integers (or booleans): class labels when one per row.</summary>
    public bool IsInteger => Kind is NumpyKind.Signed or NumpyKind.Unsigned or NumpyKind.Bool;

    /// <summary>NumPy's own name of the element type, e.g. <c>float32</c> or <c>uint8</c>, for messages.</summary>
    public string TypeName => Kind switch
    {
        NumpyKind.Float => $"float{8 * ItemSize}",
        NumpyKind.Signed => $"int{8 * ItemSize}",
        NumpyKind.Unsigned => $"uint{8 * ItemSize}",
        _ => "bool",
    };

    /// <summary>
    /// Reads the header at the start of <paramref name="prefix"/> (the entry's first bytes; 10 + the header's length at
    /// least, which <see cref="HeaderLength"/> tells). Refuses Fortran order, structured and object arrays, and types other
    /// than <see cref="NumpyKind"/>'s, in one line naming <paramref name="what"/>.
    /// </summary>
    /// <exception cref="DataFormatException">Not an array the sources read.</exception>
    public static NumpyArray Parse(ReadOnlySpan<byte> prefix, string what)
    {
        int length = HeaderLength(prefix, what);
        if (prefix.Length < length)
        {
            throw new DataFormatException($"{what}: the .npy header is cut short");
        }
        int start = prefix[6] == 1 ? 10 : 12;
        string header = (prefix[6] == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(prefix[start..length]);
        var descr = Regex.Match(header, @"'descr'\s*:\s*'([<>|=])([fiub])(\d+)'");
        if (!descr.Success)
        {
            var any = Regex.Match(header, @"'descr'\s*:\s*([^,]+(?:\[.*\])?)");
            throw new DataFormatException($"{what}: the element type {(any.Success ? any.Groups[1].Value.Trim() : "(none)")} is not one a data source reads (float, int, uint or bool)");
        }
        var order = Regex.Match(header, @"'fortran_order'\s*:\s*(True|False)");
        if (!order.Success || order.Groups[1].Value == "True")
        {
            throw new DataFormatException($"{what}: the array is stored in Fortran order; save it in C order (numpy.ascontiguousarray) to read it row by row");
        }
        var shapeText = Regex.Match(header, @"'shape'\s*:\s*\(([^)]*)\)");
        if (!shapeText.Success)
        {
            throw new DataFormatException($"{what}: the .npy header has no shape");
        }
        var shape = shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s.TrimEnd('L'), NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v : throw new DataFormatException($"{what}: the shape entry '{s}' is not a size"))
            .ToArray();
        var kind = descr.Groups[2].Value switch { "f" => NumpyKind.Float, "i" => NumpyKind.Signed, "u" => NumpyKind.Unsigned, _ => NumpyKind.Bool };
        int size = int.Parse(descr.Groups[3].Value, CultureInfo.InvariantCulture);
        bool valid = kind switch
        {
            NumpyKind.Float => size is 2 or 4 or 8,
            NumpyKind.Bool => size == 1,
            _ => size is 1 or 2 or 4 or 8,
        };
        if (!valid)
        {
            throw new DataFormatException($"{what}: the element type {descr.Groups[1].Value}{descr.Groups[2].Value}{size} is not one a data source reads (float16/32/64, int and uint of 8 to 64 bits, bool)");
        }
        return new NumpyArray(kind, size, descr.Groups[1].Value == ">" && size > 1, shape, length);
    }

    /// <summary>Reads an .npy header from the start of <paramref name="stream"/> (see <see cref="Parse"/>).</summary>
    public static NumpyArray ReadNpy(Stream stream, string what)
    {
        var prefix = new byte[12];
        stream.ReadExactly(prefix);
        var header = new byte[HeaderLength(prefix, what)];
        prefix.AsSpan(0, Math.Min(prefix.Length, header.Length)).CopyTo(header);
        if (header.Length > prefix.Length)
        {
            stream.ReadExactly(header.AsSpan(prefix.Length));
        }
        return Parse(header, what);
    }

    /// <summary>
    /// Reads the header of an IDX file (the MNIST family's format) from the start of <paramref name="stream"/>: two zero
    /// bytes, the element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
    /// dimensions, and each dimension as a big-endian int32; the values follow, big-endian, C-ordered.
    /// </summary>
    /// <exception cref="DataFormatException">Not an IDX header: the magic number is named.</exception>
    public static NumpyArray ReadIdx(Stream stream, string what)
    {
        var magic = new byte[4];
        stream.ReadExactly(magic);
        (NumpyKind Kind, int Size)? type = magic[2] switch
        {
            0x08 => (NumpyKind.Unsigned, 1),
            0x09 => (NumpyKind.Signed, 1),
            0x0B => (NumpyKind.Signed, 2),
            0x0C => (NumpyKind.Signed, 4),
            0x0D => (NumpyKind.Float, 4),
            0x0E => (NumpyKind.Float, 8),
            _ => null,
        };
        if (magic[0] != 0 || magic[1] != 0 || type is null || magic[3] == 0)
        {
            throw new DataFormatException(FormattableString.Invariant(
                $"{what}: not an IDX file (magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(magic):X8}; an IDX file starts 0x000008NN for bytes, 0x00000DNN for floats, NN its number of dimensions)"));
        }
        var dims = new byte[4 * magic[3]];
        stream.ReadExactly(dims);
        var shape = Enumerable.Range(0, magic[3]).Select(k => (long)BinaryPrimitives.ReadUInt32BigEndian(dims.AsSpan(4 * k))).ToArray();
        return new NumpyArray(type.Value.Kind, type.Value.Size, type.Value.Size > 1, shape, 4 + dims.Length);
    }

    /// <summary>
    /// The .npy version 1 header of a little-endian float64 C-ordered array of <paramref name="shape"/>, padded (with
    /// spaces and a newline) so that the values begin at a multiple of 64 bytes, as NumPy writes it.
    /// </summary>
    public static byte[] Header(IReadOnlyList<long> shape)
    {
        string dims = shape.Count == 1 ? FormattableString.Invariant($"{shape[0]},") : string.Join(", ", shape.Select(s => s.ToString(CultureInfo.InvariantCulture)));
        string dict = $"{{'descr': '<f8', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        string text = dict.PadRight(total - 10 - 1) + "\n";
        var header = new byte[total];
        Magic.CopyTo(header, 0);
        header[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)text.Length);
        Encoding.Latin1.GetBytes(text).CopyTo(header, 10);
        return header;
    }

    /// <summary>The bytes before the first value: the magic string, the version, the header's length field and the header.</summary>
    /// <exception cref="DataFormatException">Not a .npy entry, or a version other than 1, 2 or 3.</exception>
    public static int HeaderLength(ReadOnlySpan<byte> prefix, string what)
    {
        if (prefix.Length < 10 || !prefix[..6].SequenceEqual(Magic))
        {
            throw new DataFormatException($"{what}: not a NumPy .npy array (no \\x93NUMPY magic string)");
        }
        return prefix[6] switch
        {
            1 => 10 + BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..]),
            2 or 3 when prefix.Length >= 12 => checked(12 + (int)BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..])),
            _ => throw new DataFormatException($"{what}: .npy format version {prefix[6]} is not one this reader knows (1, 2, 3)"),
        };
    }

    /// <summary>Converts the elements in <paramref name="bytes"/> to float64, exactly (every type read is a subset of float64, except int64 and uint64 beyond 2⁵³, rounded).</summary>
    public void Convert(ReadOnlySpan<byte> bytes, Span<double> values)
    {
        int n = values.Length;
        if (!BigEndian || ItemSize == 1)
        {
            // The common types in bulk: float64 copied, float32 and uint8 widened.
            switch (Kind, ItemSize)
            {
                case (NumpyKind.Float, 8):
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(bytes[..(8 * n)]).CopyTo(values);
                    return;
                case (NumpyKind.Float, 4):
                    var singles = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes[..(4 * n)]);
                    for (int k = 0; k < n; k++)
                    {
                        values[k] = singles[k];
                    }
                    return;
                case (NumpyKind.Unsigned or NumpyKind.Bool, 1):
                    for (int k = 0; k < n; k++)
                    {
                        values[k] = bytes[k];
                    }
                    return;
            }
        }
        for (int k = 0; k < n; k++)
        {
            var item = bytes.Slice(k * ItemSize, ItemSize);
            values[k] = (Kind, ItemSize) switch
            {
                (NumpyKind.Float, 8) => BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(item) : BinaryPrimitives.ReadDoubleLittleEndian(item),
                (NumpyKind.Float, 4) => BigEndian ? BinaryPrimitives.ReadSingleBigEndian(item) : BinaryPrimitives.ReadSingleLittleEndian(item),
                (NumpyKind.Float, _) => (double)(BigEndian ? BinaryPrimitives.ReadHalfBigEndian(item) : BinaryPrimitives.ReadHalfLittleEndian(item)),
                (NumpyKind.Unsigned or NumpyKind.Bool, 1) => item[0],
                (NumpyKind.Signed, 1) => (sbyte)item[0],
                (NumpyKind.Signed, 2) => BigEndian ? BinaryPrimitives.ReadInt16BigEndian(item) : BinaryPrimitives.ReadInt16LittleEndian(item),
                (NumpyKind.Signed, 4) => BigEndian ? BinaryPrimitives.ReadInt32BigEndian(item) : BinaryPrimitives.ReadInt32LittleEndian(item),
                (NumpyKind.Signed, _) => BigEndian ? BinaryPrimitives.ReadInt64BigEndian(item) : BinaryPrimitives.ReadInt64LittleEndian(item),
                (NumpyKind.Unsigned, 2) => BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(item) : BinaryPrimitives.ReadUInt16LittleEndian(item),
                (NumpyKind.Unsigned, 4) => BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(item) : BinaryPrimitives.ReadUInt32LittleEndian(item),
                _ => BigEndian ? BinaryPrimitives.ReadUInt64BigEndian(item) : BinaryPrimitives.ReadUInt64LittleEndian(item),
            };
        }
    }
}
