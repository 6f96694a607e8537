using System.Buffers;
using System.Globalization;
using System.IO.Compression;
using LossLandscape.Engine;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace LossLandscape.Data;

/// <summary>
/// Rows read from array files batch by batch: NumPy's <c>.npz</c> (<see cref="OpenNpz"/>) and the IDX files of the MNIST
/// family (<see cref="OpenIdx"/>). The inputs are an array of shape (d, …), each row of shape (…) — a table's p values,
/// an image's c × h × w — in any float, integer or bool type; the targets are (d, ℓ) or (d,) values, or (d,) integer
/// class labels 0 … C − 1, which become one-hot targets over the C = max label + 1 classes (ℓ = C, as <c>--one-hot</c>
/// makes them of a CSV column; a cross-entropy loss reads the class back from them). Values are converted to float64
/// exactly (int64 beyond 2⁵³ rounded).
/// </summary>
/// <remarks>
/// <para>Opening reads the arrays once, in blocks: it checks every value is finite and every label in range, and finds
/// the classes and max|y|. Then each <see cref="Read"/> reads its rows at their offsets, so a quantity over all rows
/// never holds more than one batch. A compressed array (<c>numpy.savez_compressed</c>, a gzipped IDX file such as
/// Debian's Fashion-MNIST) cannot be read at an offset: it is decompressed once, when it is opened, into a temporary
/// file deleted when the source is disposed (disk, not memory: 47 MB for Fashion-MNIST's 60,000 training images).</para>
/// <para>The files must not change while they are read: their length and time of last write are checked at every read.</para>
/// </remarks>
public sealed class ArrayFileSource : IDataSource, IDisposable
{
    private readonly FileArray _x;
    private readonly FileArray _y;
    private readonly SafeFileHandle[] _files;
    private readonly int _classes;
    private readonly double _maxAbsTarget;

    private ArrayFileSource(string source, FileArray x, FileArray y, long[] rowShape, SafeFileHandle[] files)
    {
        Source = source;
        _x = x;
        _y = y;
        _files = files;
        if (x.Array.Shape.Length == 0 || x.Rows < 1)
        {
            throw new DataFormatException($"{x.Path}: {x.Name} has shape ({string.Join(", ", x.Array.Shape)}); it needs one row per point, at least one");
        }
        long d = x.Rows;
        if (y.Array.Shape.Length is < 1 or > 2 || y.Rows != d)
        {
            throw new DataFormatException($"{y.Path}: {y.Name} has shape ({string.Join(", ", y.Array.Shape)}); with {d} rows of {x.Name} it must be ({d},) or ({d}, ℓ)");
        }
        if (d > int.MaxValue || x.RowValues == 0 || x.RowValues > int.MaxValue || y.RowValues == 0)
        {
            throw new DataFormatException($"{x.Path}: {x.Name} has shape ({string.Join(", ", x.Array.Shape)}), not a number of rows and values per row this reader holds");
        }
        Count = (int)d;
        InputShape = rowShape;
        InputDim = (int)x.RowValues;

        // The opening pass: every value finite, every label in range; the classes, or max|y|.
        x.ForEachBlock((row, values) => RequireFinite(values, row, x));
        bool labels = y.Array.IsInteger && y.Array.Shape.Length == 1;
        double maxAbs = 0, maxLabel = -1;
        y.ForEachBlock((row, values) =>
        {
            RequireFinite(values, row, y);
            for (int k = 0; k < values.Length; k++)
            {
                if (labels && values[k] < 0)
                {
                    throw new DataFormatException(FormattableString.Invariant(
                        $"{y.Path}: {y.Name}[{row + k}] is the class label {values[k]}, out of range; class labels are 0 … C − 1"));
                }
                maxAbs = Math.Max(maxAbs, Math.Abs(values[k]));
                maxLabel = Math.Max(maxLabel, values[k]);
            }
        });
        if (labels && maxLabel >= 1 << 20)
        {
            throw new DataFormatException(FormattableString.Invariant($"{y.Path}: the class label {maxLabel} would make {maxLabel + 1} one-hot targets per row; class labels are 0 … C − 1 for a modest C"));
        }
        _classes = labels ? (int)maxLabel + 1 : 0;
        _maxAbsTarget = labels ? 1.0 : maxAbs;
        OutputDim = labels ? _classes : (int)y.RowValues;
        TargetNames = labels
            ? Enumerable.Range(0, _classes).Select(c => $"{y.Name}={c.ToString(CultureInfo.InvariantCulture)}").ToArray()
            : OutputDim == 1 && y.Array.Shape.Length == 1 ? [y.Name] : Enumerable.Range(0, OutputDim).Select(j => $"{y.Name}{j}").ToArray();
    }

    /// <summary>
    /// Opens a NumPy .npz file (<c>numpy.savez(path, x=X, y=Y)</c>): the inputs are its array <c>x</c>, the targets its
    /// array <c>y</c>, each batch read from the file (stored entries, numpy.savez) or from a copy of a compressed entry
    /// decompressed once into a temporary file (class remarks).
    /// </summary>
    /// <exception cref="DataFormatException">The file cannot be read or is not an .npz with usable <c>x</c> and <c>y</c>; the message says why.</exception>
    public static ArrayFileSource OpenNpz(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var file = OpenFile(path);
        return Opened([file], arrays =>
        {
            var entries = ZipDirectory.Read(file, path);
            FileArray Array(string name)
            {
                var entry = entries.FirstOrDefault(e => e.Name == name + ".npy")
                    ?? throw new DataFormatException($"{path}: no array '{name}' (the file holds {(entries.Count == 0 ? "none" : string.Join(", ", entries.Select(e => Path.GetFileNameWithoutExtension(e.Name))))}); save the inputs as x and the targets as y: numpy.savez(path, x=X, y=Y)");
                if (entry.Method is not (0 or 8))
                {
                    throw new DataFormatException($"{path}: array '{name}' is compressed with ZIP method {entry.Method}; only stored (numpy.savez) and deflate (numpy.savez_compressed) are read");
                }
                return arrays.Add(FileArray.Open(name, path, file, entry.DataOffset, entry.CompressedSize, entry.Method == 0 ? ArrayCompression.None : ArrayCompression.Deflate,
                    stream => NumpyArray.ReadNpy(stream, $"{path}: array '{name}'")));
            }
            var x = Array("x");
            return new ArrayFileSource(path, x, Array("y"), x.Array.Shape.Length == 1 ? [1] : x.Array.Shape[1..], [file]);
        });
    }

    /// <summary>The splits of an IDX directory: <c>train</c> (<c>train-…</c>) and <c>test</c> (<c>t10k-…</c>).</summary>
    public static IReadOnlyList<string> IdxSplits { get; } = ["train", "test"];

    /// <summary>
    /// Opens the IDX files of the MNIST family in <paramref name="directory"/> for <paramref name="split"/>
    /// (<c>train-images-idx3-ubyte</c> and <c>train-labels-idx1-ubyte</c>, or <c>t10k-…</c> for <c>test</c>; each may be
    /// gzipped, <c>….gz</c>): images of h × w pixels as rows of shape [1, h, w] (one channel, as PyTorch's datasets give
    /// them), pixels divided by 255 into [0, 1]; labels as one-hot targets. Read per batch (a gzipped file from its
    /// decompressed copy, see the class remarks).
    /// </summary>
    /// <param name="directory">The directory holding the files.</param>
    /// <param name="split"><c>train</c> or <c>test</c>.</param>
    /// <param name="source">The name the source goes by (<c>idx:DIR</c>, <c>builtin:fashion-mnist</c>); default <c>idx:DIR</c>.</param>
    /// <exception cref="DataFormatException">A file is missing, cut short, not IDX, or the files disagree; the message names the file.</exception>
    public static ArrayFileSource OpenIdx(string directory, string split = "train", string? source = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(split);
        source ??= "idx:" + directory;
        if (!IdxSplits.Contains(split))
        {
            throw new DataFormatException($"{source}: the split '{split}' is not one of {string.Join(", ", IdxSplits)}");
        }
        string prefix = split == "train" ? "train" : "t10k";
        string Find(string stem)
        {
            string plain = Path.Combine(directory, $"{prefix}-{stem}");
            return File.Exists(plain) ? plain : File.Exists(plain + ".gz") ? plain + ".gz"
                : throw new DataFormatException($"{source}: no {prefix}-{stem} (or {prefix}-{stem}.gz) in {directory}");
        }
        string imagesPath = Find("images-idx3-ubyte"), labelsPath = Find("labels-idx1-ubyte");
        var images = OpenFile(imagesPath);
        SafeFileHandle? labels = null;
        try
        {
            labels = OpenFile(labelsPath);
        }
        catch
        {
            images.Dispose();
            throw;
        }
        return Opened([images, labels], arrays =>
        {
            FileArray Array(string name, string path, SafeFileHandle file, double divisor) =>
                arrays.Add(FileArray.Open(name, path, file, 0, RandomAccess.GetLength(file), path.EndsWith(".gz", StringComparison.Ordinal) ? ArrayCompression.Gzip : ArrayCompression.None,
                    stream => NumpyArray.ReadIdx(stream, path), divisor));
            var x = Array("images", imagesPath, images, 255.0);
            var y = Array("labels", labelsPath, labels, 1.0);
            if (x.Array.Shape.Length != 3 || y.Array.Shape.Length != 1 || !y.Array.IsInteger)
            {
                throw new DataFormatException($"{source}: {imagesPath} has shape ({string.Join(", ", x.Array.Shape)}) and {labelsPath} ({string.Join(", ", y.Array.Shape)}) of {y.Array.TypeName}; IDX images are (d, h, w) and labels (d,) integers");
            }
            if (x.Rows != y.Rows)
            {
                throw new DataFormatException($"{source}: {imagesPath} holds {x.Rows} images but {labelsPath} {y.Rows} labels");
            }
            return new ArrayFileSource(source, x, y, [1, x.Array.Shape[1], x.Array.Shape[2]], [images, labels]);
        });
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
    public string Source { get; }

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
        // Scratch from the shared pools, not new arrays: a batch's arrays are large objects, which a garbage collection
        // of the youngest generation does not free, and a pass over d rows would leave d/B of them behind.
        int xs = checked((int)(count * InputDim)), ys = checked((int)(count * _y.RowValues));
        var x = ArrayPool<double>.Shared.Rent(xs);
        var y = ArrayPool<double>.Shared.Rent(ys);
        try
        {
            _x.ReadRows(start, count, x.AsSpan(0, xs));
            _y.ReadRows(start, count, y.AsSpan(0, ys));
            return (TensorOf(x.AsSpan(0, xs), [count, .. InputShape]), Targets(y.AsSpan(0, ys), count));
        }
        finally
        {
            ArrayPool<double>.Shared.Return(x);
            ArrayPool<double>.Shared.Return(y);
        }
    }

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) ReadRows(IReadOnlyList<long> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var x = new double[rows.Count * InputDim];
        var y = new double[rows.Count * _y.RowValues];
        for (int k = 0; k < rows.Count; k++)
        {
            if ((ulong)rows[k] >= (ulong)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), rows[k], $"row index outside 0..{Count - 1}");
            }
            _x.ReadRows(rows[k], 1, x.AsSpan(k * InputDim, InputDim));
            _y.ReadRows(rows[k], 1, y.AsSpan((int)(k * _y.RowValues), (int)_y.RowValues));
        }
        return (TensorOf(x, [rows.Count, .. InputShape]), Targets(y, rows.Count));
    }

    /// <inheritdoc/>
    /// <remarks>The rows read once, in blocks, after the arrays are priced (<see cref="Dataset.ReadAll"/>).</remarks>
    public Dataset Load(RunLimits? limits = null) => Dataset.ReadAll(this, limits);

    /// <summary>Closes the files and deletes the decompressed copies.</summary>
    public void Dispose()
    {
        _x.Dispose();
        _y.Dispose();
        foreach (var file in _files)
        {
            file.Dispose();
        }
    }

    /// <summary>
    /// Writes the rows of <paramref name="data"/> to <paramref name="path"/> as numpy.savez does (stored entries, which
    /// <see cref="OpenNpz"/> reads per batch): <c>x</c> of shape (d, …the row shape) and <c>y</c> of shape (d, ℓ), float64,
    /// read and written <paramref name="batchRows"/> rows at a time, so that data larger than memory can be written. The
    /// file appears whole or not at all (<see cref="AtomicFile"/>).
    /// </summary>
    public static void SaveNpz(IDataSource data, string path, int batchRows = 65536)
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

    /// <summary>A new float64 tensor of <paramref name="shape"/> holding a copy of <paramref name="values"/>.</summary>
    private static Tensor TensorOf(ReadOnlySpan<double> values, long[] shape)
    {
        var t = empty(shape, dtype: float64);
        t.data<double>().CopyFrom(values);
        return t;
    }

    /// <summary>The targets of <paramref name="count"/> rows: the values, or the one-hot rows of the labels.</summary>
    private Tensor Targets(ReadOnlySpan<double> y, long count)
    {
        if (_classes == 0)
        {
            return TensorOf(y, [count, OutputDim]);
        }
        var labels = new long[count];
        for (long i = 0; i < count; i++)
        {
            labels[i] = (long)y[(int)i];
        }
        using var index = tensor(labels, dtype: int64);
        using var indicators = nn.functional.one_hot(index, OutputDim);
        return indicators.to_type(float64);
    }

    private static void RequireFinite(ReadOnlySpan<double> values, long row, FileArray array)
    {
        for (int k = 0; k < values.Length; k++)
        {
            if (!double.IsFinite(values[k]))
            {
                long flat = (row * array.RowValues) + k;
                throw new DataFormatException(FormattableString.Invariant(
                    $"{array.Path}: {array.Name}[{flat / array.RowValues}] has the value {values[k]} at position {flat % array.RowValues} of its row; data values must be finite (rows and positions from 0)"));
            }
        }
    }

    private static SafeFileHandle OpenFile(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read: {e.Message}");
        }
    }

    /// <summary>The source <paramref name="open"/> makes from its arrays; on a refusal the arrays and the files are closed.</summary>
    private static ArrayFileSource Opened(SafeFileHandle[] files, Func<Arrays, ArrayFileSource> open)
    {
        TorchRuntime.EnsureInitialized();
        var arrays = new Arrays();
        try
        {
            return open(arrays);
        }
        catch
        {
            arrays.Dispose();
            foreach (var file in files)
            {
                file.Dispose();
            }
            throw;
        }
    }

    /// <summary>The arrays opened so far, closed together when the opening fails.</summary>
    private sealed class Arrays : IDisposable
    {
        private readonly List<FileArray> _opened = [];

        public FileArray Add(FileArray array)
        {
            _opened.Add(array);
            return array;
        }

        public void Dispose() => _opened.ForEach(a => a.Dispose());
    }
}
