using System.Buffers;
using System.IO.Compression;
using LossLandscape.Engine;
using Microsoft.Win32.SafeHandles;

namespace LossLandscape.Data;

/// <summary>How an array's bytes are stored in its file.</summary>
internal enum ArrayCompression
{
    /// <summary>As they are: any row is read at its offset.</summary>
    None,

    /// <summary>Raw deflate (a compressed .npz entry): read in order only.</summary>
    Deflate,

    /// <summary>A gzip file (<c>….gz</c>): read in order only.</summary>
    Gzip,
}

/// <summary>What is done with one block of an array read in order: its first row and its values (valid during the call only).</summary>
internal delegate void BlockAction(long row, ReadOnlySpan<double> values);

/// <summary>
/// One C-ordered array inside a file — an .npy entry of an .npz, an IDX file — with its header (element type, shape):
/// its rows read at their offsets, or all of it in order, in blocks, converted to float64 (and divided by
/// <see cref="Divisor"/>, 255 for IDX pixels). A compressed array (a deflated .npz entry, a gzipped IDX file) is
/// decompressed once, when it is opened, into a temporary file that is deleted when the array is disposed, so that its
/// rows too are read at their offsets and never all held in memory.
/// </summary>
internal sealed class FileArray : IDisposable
{
    /// <summary>Bytes of one block of a read in order.</summary>
    private const int BlockBytes = 1 << 22;

    private readonly SafeFileHandle _file;
    private readonly long _offset;
    private readonly long _length;
    private readonly SafeFileHandle _origin;
    private readonly long _fileLength;
    private readonly DateTime _written;
    private readonly FileStream? _decompressed;

    private FileArray(string name, string path, SafeFileHandle origin, SafeFileHandle file, long offset, long length, NumpyArray array, double divisor, FileStream? decompressed)
    {
        Name = name;
        Path = path;
        _origin = origin;
        _file = file;
        _offset = offset;
        _length = length;
        Array = array;
        Divisor = divisor;
        _decompressed = decompressed;
        _fileLength = RandomAccess.GetLength(origin);
        _written = File.GetLastWriteTimeUtc(path);
    }

    /// <summary>
    /// The array of <paramref name="length"/> stored bytes from <paramref name="offset"/> of <paramref name="file"/>, its header
    /// read by <paramref name="header"/> from the start of the (decompressed) bytes.
    /// </summary>
    public static FileArray Open(string name, string path, SafeFileHandle file, long offset, long length, ArrayCompression compression, Func<Stream, NumpyArray> header,
        double divisor = 1.0)
    {
        NumpyArray array;
        FileStream? decompressed = null;
        try
        {
            using (var stream = Bytes(file, offset, length, compression))
            {
                array = header(stream);
                if (compression != ArrayCompression.None)
                {
                    // The header again, then the values, into a file of their own that goes when it is closed.
                    decompressed = AtomicFile.Scratch("array");
                    decompressed.Write(new byte[array.HeaderBytes]);
                    stream.CopyTo(decompressed);
                    decompressed.Flush();
                }
            }
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            decompressed?.Dispose();
            throw new DataFormatException($"{path}: '{name}' is cut short or damaged ({e.Message})");
        }
        catch (IOException e)
        {
            decompressed?.Dispose();
            throw new DataFormatException($"{path}: '{name}' could not be decompressed into a temporary file ({e.Message})");
        }
        var values = decompressed?.SafeFileHandle ?? file;
        long stored = decompressed?.Length ?? length;
        var opened = new FileArray(name, path, file, values, decompressed is null ? offset : 0, stored, array, divisor, decompressed);
        long needed = checked(array.HeaderBytes + (array.Length * array.ItemSize));
        if (stored < needed)
        {
            opened.Dispose();
            throw new DataFormatException($"{path}: '{name}' of shape ({string.Join(", ", array.Shape)}) and type {array.TypeName} needs {needed} bytes, the file holds {stored} (is it cut short?)");
        }
        return opened;
    }

    /// <summary>The array's name, for messages (<c>x</c>, <c>y</c>, <c>images</c>, <c>labels</c>).</summary>
    public string Name { get; }

    /// <summary>The file, for messages.</summary>
    public string Path { get; }

    /// <summary>The header: type and shape.</summary>
    public NumpyArray Array { get; }

    /// <summary>What every value is divided by after its conversion (1, or 255 for IDX pixels).</summary>
    public double Divisor { get; }

    /// <summary>The rows: the first axis (1 for a scalar).</summary>
    public long Rows => Array.Shape.Length == 0 ? 1 : Array.Shape[0];

    /// <summary>Values per row: the product of the shape after the first axis.</summary>
    public long RowValues => Array.Shape.Length <= 1 ? 1 : Array.Shape[1..].Aggregate(1L, (a, b) => checked(a * b));

    private long RowBytes => RowValues * Array.ItemSize;

    /// <summary>Rows <paramref name="start"/> … read at their offset and converted into <paramref name="values"/>.</summary>
    public void ReadRows(long start, long count, Span<double> values)
    {
        RequireUnchanged();
        int length = checked((int)(count * RowBytes));
        var bytes = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            ZipDirectory.ReadExactly(_file, bytes.AsSpan(0, length), _offset + Array.HeaderBytes + (start * RowBytes), Path);
            Convert(bytes.AsSpan(0, length), values);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>The whole array in order, converted, in blocks of whole rows.</summary>
    public void ForEachBlock(BlockAction block)
    {
        RequireUnchanged();
        long perBlock = Math.Max(1, BlockBytes / Math.Max(1, RowBytes));
        using var stream = Bytes(_file, _offset, _length, ArrayCompression.None);
        var bytes = ArrayPool<byte>.Shared.Rent((int)Math.Max(Array.HeaderBytes, Math.Min(perBlock, Rows) * RowBytes));
        var values = ArrayPool<double>.Shared.Rent((int)(Math.Min(perBlock, Rows) * RowValues));
        try
        {
            stream.ReadExactly(bytes.AsSpan(0, Array.HeaderBytes));
            for (long row = 0; row < Rows; row += perBlock)
            {
                long count = Math.Min(perBlock, Rows - row);
                var chunk = bytes.AsSpan(0, (int)(count * RowBytes));
                try
                {
                    stream.ReadExactly(chunk);
                }
                catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
                {
                    throw new DataFormatException($"{Path}: '{Name}' ends before its {Rows} rows (row {row} of them is missing) or is damaged ({e.Message})");
                }
                var converted = values.AsSpan(0, (int)(count * RowValues));
                Convert(chunk, converted);
                block(row, converted);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
            ArrayPool<double>.Shared.Return(values);
        }
    }

    /// <summary>Refuses a file whose length or time of last write changed since it was opened.</summary>
    public void RequireUnchanged()
    {
        if (RandomAccess.GetLength(_origin) != _fileLength || File.GetLastWriteTimeUtc(Path) != _written)
        {
            throw new DataFormatException($"{Path}: the file changed while it was read; read it when nothing writes to it");
        }
    }

    /// <summary>Deletes the decompressed copy, if any (the file it came from is its owner's to close).</summary>
    public void Dispose() => _decompressed?.Dispose();

    private void Convert(ReadOnlySpan<byte> bytes, Span<double> values)
    {
        Array.Convert(bytes, values);
        if (Divisor != 1.0)
        {
            for (int k = 0; k < values.Length; k++)
            {
                values[k] /= Divisor;
            }
        }
    }

    private static Stream Bytes(SafeFileHandle file, long offset, long length, ArrayCompression compression)
    {
        var raw = new RangeStream(file, offset, length);
        return compression switch
        {
            ArrayCompression.Deflate => new DeflateStream(raw, CompressionMode.Decompress),
            ArrayCompression.Gzip => new GZipStream(raw, CompressionMode.Decompress),
            _ => raw,
        };
    }

    /// <summary>A read-only, forward-only view of <paramref name="length"/> bytes of a file from <paramref name="offset"/>.</summary>
    private sealed class RangeStream(SafeFileHandle file, long offset, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset1, int count) => Read(buffer.AsSpan(offset1, count));

        public override int Read(Span<byte> buffer)
        {
            int want = (int)Math.Min(buffer.Length, length - _position);
            if (want <= 0)
            {
                return 0;
            }
            int read = RandomAccess.Read(file, buffer[..want], offset + _position);
            _position += read;
            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset1, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset1, int count) => throw new NotSupportedException();
    }
}
