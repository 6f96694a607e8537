using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LossLandscape.Cluster;

/// <summary>
/// Vectors and blocks as raw bytes: Orleans copies a <c>byte[]</c> as one block (400–900 MB/s across processes here),
/// where a <c>double[]</c> is serialised element by element (~70 MB/s; issue 12 §2).
/// </summary>
internal static class VectorBytes
{
    /// <summary>The float64 tensor's values, row-major, as little-endian IEEE bytes.</summary>
    public static byte[] FromTensor(Tensor t)
    {
        using var scope = NewDisposeScope();
        var values = t.detach().to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
    }

    /// <summary>The doubles as bytes.</summary>
    public static byte[] FromDoubles(ReadOnlySpan<double> values) => MemoryMarshal.AsBytes(values).ToArray();

    /// <summary>The bytes as doubles.</summary>
    public static double[] ToDoubles(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length % sizeof(double) != 0)
        {
            throw new InvalidDataException($"a vector payload of {bytes.Length} bytes is not a whole number of doubles");
        }
        return MemoryMarshal.Cast<byte, double>(bytes).ToArray();
    }

    /// <summary>A rows × columns float64 tensor from row-major bytes.</summary>
    public static Tensor ToTensor(ReadOnlySpan<byte> bytes, long rows, long columns)
    {
        var values = ToDoubles(bytes);
        if (values.LongLength != rows * columns)
        {
            throw new InvalidDataException($"a payload of {values.Length} doubles is not a {rows} × {columns} block");
        }
        return tensor(values, [rows, columns], ScalarType.Float64);
    }

    /// <summary>The bytes cut into chunks of at most <paramref name="chunkBytes"/> (a multiple of 8 is kept whole); at least one chunk.</summary>
    public static byte[][] Split(byte[] bytes, int chunkBytes)
    {
        int size = Math.Max(sizeof(double), chunkBytes - chunkBytes % sizeof(double));
        if (bytes.Length <= size)
        {
            return [bytes];
        }
        int count = (int)((bytes.LongLength + size - 1) / size);
        var chunks = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            int start = i * size;
            chunks[i] = bytes.AsSpan(start, Math.Min(size, bytes.Length - start)).ToArray();
        }
        return chunks;
    }

    /// <summary>The chunks joined in order.</summary>
    public static byte[] Join(IReadOnlyList<byte[]> chunks)
    {
        if (chunks.Count == 1)
        {
            return chunks[0];
        }
        var joined = new byte[chunks.Sum(c => (long)c.Length)];
        long offset = 0;
        foreach (var c in chunks)
        {
            c.CopyTo(joined, offset);
            offset += c.Length;
        }
        return joined;
    }

    /// <summary>FNV-1a (64-bit) over the rows' inputs and targets as IEEE bytes: a fingerprint for "the same data".</summary>
    public static ulong Fingerprint(Data.Dataset data)
    {
        const ulong offsetBasis = 14695981039346656037UL, prime = 1099511628211UL; // FNV-1a 64-bit constants (Fowler, Noll, Vo).
        ulong hash = offsetBasis;
        void Add(double v)
        {
            ulong bits = (ulong)BitConverter.DoubleToInt64Bits(v);
            for (int b = 0; b < 8; b++)
            {
                hash = (hash ^ ((bits >> (8 * b)) & 0xFF)) * prime;
            }
        }
        for (int i = 0; i < data.Count; i++)
        {
            foreach (var x in data.InputRow(i))
            {
                Add(x);
            }
            foreach (var y in data.TargetRow(i))
            {
                Add(y);
            }
        }
        return hash;
    }
}
