using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using LossLandscape.Engine;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace LossLandscape.Data;

/// <summary>
/// Rows from a NumPy <c>.npz</c> file (<c>numpy.savez</c>), read from the file batch by batch: the array <c>x</c> of
/// shape (d, …) holds the inputs, each row of shape (…) (a table's p values, an image's c × h × w), in any float,
/// integer or bool type; <c>y</c> holds the targets, (d, ℓ) or (d,) values, or (d,) integer class labels, which become
/// one-hot targets over the sorted distinct labels (ℓ = the number of classes, as <c>--one-hot</c> makes them of a CSV
/// column). Values are converted to float64 exactly (int64 beyond 2⁵³ rounded).
/// </summary>
/// <remarks>
/// <para>Opening reads the file once, in blocks: it checks every value is finite and finds the classes and max|y|. Then
/// each <see cref="Read"/> reads its rows at their offsets, so a quantity over all rows never holds more than one batch:
/// the entries of a <c>numpy.savez</c> file are stored uncompressed, at known offsets. A compressed entry
/// (<c>numpy.savez_compressed</c>) cannot be read at an offset; such a file is read once, in order, into a
/// <see cref="Dataset"/> priced against the memory budget (<see cref="Open"/>).</para>
/// <para>The file must not change while it is read: its length and time of last write are checked at every read.</para>
/// </remarks>
public sealed class NpzSource : IDataSource, IDisposable
{
    /// <summary>Bytes of one block of the opening pass and of a compressed file's read.</summary>
    private const int BlockBytes = 1 << 22;

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly DateTime _written;
    private readonly long _length;
    private readonly Part _x;
    private readonly Part _y;
    private readonly long[]? _classes;
    private readonly double _maxAbsTarget;

    private NpzSource(SafeFileHandle file, string path, Part x, Part y, long[]? classes, double maxAbsTarget)
    {
        _file = file;
        _path = path;
        _length = RandomAccess.GetLength(file);
        _written = File.GetLastWriteTimeUtc(path);
        _x = x;
        _y = y;
        _classes = classes;
        _maxAbsTarget = maxAbsTarget;
        Count = (int)x.Array.Shape[0];
        InputShape = x.Array.Shape.Length == 1 ? [1] : x.Array.Shape[1..];
        InputDim = (int)x.RowValues;
        OutputDim = classes?.Length ?? (int)y.RowValues;
        TargetNames = classes is not null
            ? classes.Select(c => "y=" + c.ToString(CultureInfo.InvariantCulture)).ToArray()
            : OutputDim == 1 && y.Array.Shape.Length == 1 ? ["y"] : Enumerable.Range(0, OutputDim).Select(j => $"y{j}").ToArray();
    }

    /// <summary>
    /// Opens <paramref name="path"/>: a source that reads each batch from the file when both arrays are stored
    /// uncompressed (<c>numpy.savez</c>), else (<c>numpy.savez_compressed</c>) the rows read once into a
    /// <see cref="Dataset"/>, priced against <paramref name="budgetBytes"/> first.
    /// </summary>
    /// <exception cref="DataFormatException">The file cannot be read or is not an .npz with usable <c>x</c> and <c>y</c>; the message says why.</exception>
    /// <exception cref="MemoryBudgetExceededException">A compressed file's rows would exceed <paramref name="budgetBytes"/>.</exception>
    public static IDataSource Open(string path, long budgetBytes = MemoryBudget.DefaultBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        TorchRuntime.EnsureInitialized();
        SafeFileHandle file;
        try
        {
            file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read: {e.Message}");
        }
        try
        {
            var entries = ZipDirectory.Read(file, path);
            var x = Part.Find(file, entries, "x", path);
            var y = Part.Find(file, entries, "y", path);
            if (x.Array.Shape.Length == 0 || x.Array.Shape[0] < 1)
            {
                throw new DataFormatException($"{path}: x has shape ({string.Join(", ", x.Array.Shape)}); it needs one row per point, at least one");
            }
            long d = x.Array.Shape[0];
            if (y.Array.Shape.Length is < 1 or > 2 || y.Array.Shape[0] != d)
            {
                throw new DataFormatException($"{path}: y has shape ({string.Join(", ", y.Array.Shape)}); with {d} rows of x it must be ({d},) or ({d}, ℓ)");
            }
            if (d > int.MaxValue || x.RowValues == 0 || x.RowValues > int.MaxValue || y.RowValues == 0)
            {
                throw new DataFormatException($"{path}: x has shape ({string.Join(", ", x.Array.Shape)}), not a number of rows and values per row this reader holds");
            }
            // The opening pass: every value finite; the classes of integer labels, or max|y|.
            x.ForEachBlock(file, path, (row, values) => RequireFinite(values, row, x, path));
            bool labels = y.Array.IsInteger && y.Array.Shape.Length == 1;
            var classes = labels ? new SortedSet<long>() : null;
            double maxAbs = 0;
            y.ForEachBlock(file, path, (row, values) =>
            {
                RequireFinite(values, row, y, path);
                foreach (double v in values)
                {
                    if (classes is not null)
                    {
                        classes.Add((long)v);
                    }
                    maxAbs = Math.Max(maxAbs, Math.Abs(v));
                }
            });
            var source = new NpzSource(file, path, x, y, classes?.ToArray(), classes is not null ? 1.0 : maxAbs);
            if (x.Stored && y.Stored)
            {
                return source;
            }
            using (source)
            {
                return source.Load(budgetBytes);
            }
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public IReadOnlyList<long> InputShape { get; }

    /// <inheritdoc/>
    public int InputDim { get; }

    /// <inheritdoc/>
    public int OutputDim { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> TargetNames { get; }

    /// <inheritdoc/>
    public string Source => _path;

    /// <inheritdoc/>
    public bool Resident => false;

    /// <inheritdoc/>
    public double MaxAbsTarget() => _maxAbsTarget;

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) Read(long start, long count)
    {
        if (start < 0 || count < 0 || start + count > Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"rows {start} … {start + count - 1} are outside 0 … {Count - 1}");
        }
        RequireUnchanged();
        // Scratch from the shared pools, not new arrays: a batch's arrays are large objects, which a garbage collection
        // of the youngest generation does not free, and a pass over d rows would leave d/B of them behind.
        var x = ArrayPool<double>.Shared.Rent((int)(count * InputDim));
        var y = ArrayPool<double>.Shared.Rent((int)(count * _y.RowValues));
        try
        {
            _x.ReadRows(_file, _path, start, count, x.AsSpan(0, (int)(count * InputDim)));
            _y.ReadRows(_file, _path, start, count, y.AsSpan(0, (int)(count * _y.RowValues)));
            return (TensorOf(x.AsSpan(0, (int)(count * InputDim)), [count, .. InputShape]), Targets(y, count));
        }
        finally
        {
            ArrayPool<double>.Shared.Return(x);
            ArrayPool<double>.Shared.Return(y);
        }
    }

    /// <summary>A new float64 tensor of <paramref name="shape"/> holding a copy of <paramref name="values"/>.</summary>
    private static Tensor TensorOf(ReadOnlySpan<double> values, long[] shape)
    {
        var t = empty(shape, dtype: float64);
        t.data<double>().CopyFrom(values);
        return t;
    }

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) ReadRows(IReadOnlyList<long> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        RequireUnchanged();
        var x = new double[rows.Count * InputDim];
        var y = new double[rows.Count * _y.RowValues];
        for (int k = 0; k < rows.Count; k++)
        {
            if ((ulong)rows[k] >= (ulong)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), rows[k], $"row index outside 0..{Count - 1}");
            }
            _x.ReadRows(_file, _path, rows[k], 1, x.AsSpan(k * InputDim, InputDim));
            _y.ReadRows(_file, _path, rows[k], 1, y.AsSpan((int)(k * _y.RowValues), (int)_y.RowValues));
        }
        return (TensorOf(x, [rows.Count, .. InputShape]), Targets(y, rows.Count));
    }

    /// <inheritdoc/>
    /// <remarks>The rows read once, in order (a compressed file's only read), after the arrays are priced.</remarks>
    public Dataset Load(long budgetBytes)
    {
        MemoryBudget.Require(FormattableString.Invariant($"the data of {_path} ({Count} rows × {InputDim} inputs + {OutputDim} targets, float64)"),
            MemoryBudget.DenseMatrixBytes(Count, InputDim + OutputDim), budgetBytes, "use fewer rows of the data, or raise the memory budget", BudgetRemedy.Rows);
        var x = new double[Dataset.FlatLength(Count, InputDim, $"{_path}: the inputs")];
        var y = new double[Dataset.FlatLength(Count, OutputDim, $"{_path}: the targets")];
        _x.ForEachBlock(_file, _path, (row, values) => values.CopyTo(x.AsSpan((int)(row * InputDim))));
        long labelsPerRow = _y.RowValues;
        _y.ForEachBlock(_file, _path, (row, values) =>
        {
            if (_classes is null)
            {
                values.CopyTo(y.AsSpan((int)(row * OutputDim)));
                return;
            }
            for (int k = 0; k < values.Length; k++)
            {
                y[(row + k / labelsPerRow) * OutputDim + Array.BinarySearch(_classes, (long)values[k])] = 1.0;
            }
        });
        var names = Enumerable.Range(0, InputDim).Select(j => $"x{j}").ToArray();
        return Dataset.Own(x, InputDim, y, OutputDim, names, TargetNames.ToArray(), _path, InputShape.ToArray());
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file.Dispose();

    /// <summary>
    /// Writes the rows of <paramref name="data"/> to <paramref name="path"/> as numpy.savez does (stored entries, which
    /// <see cref="Open"/> reads per batch): <c>x</c> of shape (d, …the row shape) and <c>y</c> of shape (d, ℓ), float64,
    /// read and written <paramref name="batchRows"/> rows at a time, so that data larger than memory can be written. The
    /// file appears whole or not at all (<see cref="AtomicFile"/>).
    /// </summary>
    public static void Save(IDataSource data, string path, int batchRows = 65536)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchRows, 1);
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (name, shape) in new (string, long[])[] { ("x", [data.Count, .. data.InputShape]), ("y", [data.Count, data.OutputDim]) })
            {
                using var entry = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
                entry.Write(NumpyArray.Header(shape));
                for (long start = 0; start < data.Count; start += batchRows)
                {
                    using var scope = NewDisposeScope();
                    var (x, y) = data.Read(start, Math.Min(batchRows, data.Count - start));
                    var values = (name == "x" ? x : y).contiguous().data<double>().ToArray();
                    entry.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
                }
            }
        });
    }

    /// <summary>The targets of <paramref name="count"/> rows: the values, or the one-hot rows of the labels.</summary>
    private Tensor Targets(double[] y, long count)
    {
        if (_classes is null)
        {
            return TensorOf(y.AsSpan(0, (int)(count * OutputDim)), [count, OutputDim]);
        }
        var labels = new long[count];
        for (long i = 0; i < count; i++)
        {
            labels[i] = Array.BinarySearch(_classes, (long)y[i]);
        }
        using var index = tensor(labels, dtype: int64);
        using var indicators = nn.functional.one_hot(index, OutputDim);
        return indicators.to_type(float64);
    }

    private void RequireUnchanged()
    {
        ObjectDisposedException.ThrowIf(_file.IsClosed, this);
        if (RandomAccess.GetLength(_file) != _length || File.GetLastWriteTimeUtc(_path) != _written)
        {
            throw new DataFormatException($"{_path}: the file changed while it was read; read it when nothing writes to it");
        }
    }

    private static void RequireFinite(ReadOnlySpan<double> values, long row, Part part, string path)
    {
        for (int k = 0; k < values.Length; k++)
        {
            if (!double.IsFinite(values[k]))
            {
                long flat = row * part.RowValues + k;
                throw new DataFormatException(FormattableString.Invariant(
                    $"{path}: {part.Name}[{flat / part.RowValues}] has the value {values[k]} at position {flat % part.RowValues} of its row; data values must be finite (rows and positions from 0)"));
            }
        }
    }

    /// <summary>What is done with one block of an array read in order: its first row and its values (valid during the call only).</summary>
    private delegate void BlockAction(long row, ReadOnlySpan<double> values);

    /// <summary>One array of the file: its entry, its header, the values per row (the product of the shape after the first axis).</summary>
    private sealed record Part(string Name, ZipDirectory.Entry Entry, NumpyArray Array)
    {
        public long RowValues => Array.Shape.Length <= 1 ? 1 : Array.Shape[1..].Aggregate(1L, (a, b) => checked(a * b));

        public long RowBytes => RowValues * Array.ItemSize;

        public bool Stored => Entry.Method == 0;

        public static Part Find(SafeFileHandle file, IReadOnlyList<ZipDirectory.Entry> entries, string name, string path)
        {
            var entry = entries.FirstOrDefault(e => e.Name == name + ".npy")
                ?? throw new DataFormatException($"{path}: no array '{name}' (the file holds {(entries.Count == 0 ? "none" : string.Join(", ", entries.Select(e => Path.GetFileNameWithoutExtension(e.Name))))}); save the inputs as x and the targets as y: numpy.savez(path, x=X, y=Y)");
            if (entry.Method is not (0 or 8))
            {
                throw new DataFormatException($"{path}: array '{name}' is compressed with ZIP method {entry.Method}; only stored (numpy.savez) and deflate (numpy.savez_compressed) are read");
            }
            string what = $"{path}: array '{name}'";
            using var stream = Open(file, entry);
            var prefix = new byte[12];
            stream.ReadExactly(prefix);
            var header = new byte[NumpyArray.HeaderLength(prefix, what)];
            prefix.CopyTo(header, 0);
            stream.ReadExactly(header.AsSpan(prefix.Length));
            var array = NumpyArray.Parse(header, what);
            long needed = checked(array.HeaderBytes + array.Length * array.ItemSize);
            if (entry.Size < needed)
            {
                throw new DataFormatException($"{what}: shape ({string.Join(", ", array.Shape)}) of {array.TypeName} needs {needed} bytes, the entry holds {entry.Size}");
            }
            return new Part(name, entry, array);
        }

        /// <summary>Rows <paramref name="start"/> … of a stored entry, read at their offset and converted.</summary>
        public void ReadRows(SafeFileHandle file, string path, long start, long count, Span<double> values)
        {
            int length = (int)(count * RowBytes);
            var bytes = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                ZipDirectory.ReadExactly(file, bytes.AsSpan(0, length), Entry.DataOffset + Array.HeaderBytes + start * RowBytes, path);
                Array.Convert(bytes.AsSpan(0, length), values);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(bytes);
            }
        }

        /// <summary>The whole array in order, converted, in blocks of whole rows: (first row, values), the values valid during the call only.</summary>
        public void ForEachBlock(SafeFileHandle file, string path, BlockAction block)
        {
            long rows = Array.Shape.Length == 0 ? 1 : Array.Shape[0];
            long perBlock = Math.Max(1, BlockBytes / Math.Max(1, RowBytes));
            using var stream = Open(file, Entry);
            stream.ReadExactly(new byte[Array.HeaderBytes]);
            var bytes = ArrayPool<byte>.Shared.Rent((int)(Math.Min(perBlock, rows) * RowBytes));
            var values = ArrayPool<double>.Shared.Rent((int)(Math.Min(perBlock, rows) * RowValues));
            try
            {
                for (long row = 0; row < rows; row += perBlock)
                {
                    long count = Math.Min(perBlock, rows - row);
                    var chunk = bytes.AsSpan(0, (int)(count * RowBytes));
                    try
                    {
                        stream.ReadExactly(chunk);
                    }
                    catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
                    {
                        throw new DataFormatException($"{path}: array '{Name}' ends early or is damaged ({e.Message})");
                    }
                    var converted = values.AsSpan(0, (int)(count * RowValues));
                    Array.Convert(chunk, converted);
                    block(row, converted);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(bytes);
                ArrayPool<double>.Shared.Return(values);
            }
        }

        private static Stream Open(SafeFileHandle file, ZipDirectory.Entry entry)
        {
            var raw = new EntryStream(file, entry.DataOffset, entry.CompressedSize);
            return entry.Method == 0 ? raw : new DeflateStream(raw, CompressionMode.Decompress);
        }
    }

    /// <summary>A read-only, forward-only view of <paramref name="length"/> bytes of the file from <paramref name="offset"/>.</summary>
    private sealed class EntryStream(SafeFileHandle file, long offset, long length) : Stream
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
