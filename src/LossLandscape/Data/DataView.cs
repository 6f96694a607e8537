using System.Globalization;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Data;

/// <summary>
/// A deterministic view of another source: a range of its rows (<c>--rows N</c> or <c>--rows A:B</c>) and/or another row
/// shape for the same values (<c>--input-shape C,H,W</c>: a table's p values as a c × h × w image, row-major). Reads go
/// to the source, batch by batch; nothing is copied. The view owns its source: disposing it disposes the source.
/// </summary>
public sealed class DataView : IDataSource, IDisposable
{
    private readonly IDataSource _source;
    private readonly long _first;
    private readonly long[] _shape;

    private DataView(IDataSource source, long first, int count, long[] shape)
    {
        _source = source;
        _first = first;
        Count = count;
        _shape = shape;
    }

    /// <summary>
    /// The view of <paramref name="source"/> that <paramref name="rows"/> and <paramref name="inputShape"/> describe, or the
    /// source itself when both are null.
    /// </summary>
    /// <param name="source">The rows.</param>
    /// <param name="rows"><c>N</c> (the first N rows) or <c>A:B</c> (rows A … B − 1, counted from 0); null: all.</param>
    /// <param name="inputShape">The row shape as comma-separated sizes (<c>1,8,8</c>) whose product is p; null: the source's.</param>
    /// <exception cref="LandscapeInputException">A range outside the rows or empty, or a shape that does not hold p values; the message names it.</exception>
    public static IDataSource Of(IDataSource source, string? rows, string? inputShape)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (rows is null && inputShape is null)
        {
            return source;
        }
        var (first, count) = rows is null ? (0L, source.Count) : Range(rows, source.Count, source.Source);
        var shape = inputShape is null ? source.InputShape.ToArray() : Shape(inputShape, source.InputDim, source.Source);
        return new DataView(source, first, (int)count, shape);
    }

    /// <inheritdoc/>
    public int Count { get; }

    /// <inheritdoc/>
    public IReadOnlyList<long> InputShape => _shape;

    /// <inheritdoc/>
    public int InputDim => _source.InputDim;

    /// <inheritdoc/>
    public int OutputDim => _source.OutputDim;

    /// <inheritdoc/>
    public IReadOnlyList<string> TargetNames => _source.TargetNames;

    /// <inheritdoc/>
    public string Source => _source.Source;

    /// <inheritdoc/>
    /// <remarks>The source's: a view of rows in memory is in memory (a problem then copies its rows once, as for the source).</remarks>
    public bool Resident => _source.Resident;

    /// <inheritdoc/>
    /// <remarks>The source's when the view has all its rows; else over the view's rows, read once, on the first call.</remarks>
    public double MaxAbsTarget()
    {
        if (_first == 0 && Count == _source.Count)
        {
            return _source.MaxAbsTarget(); // a reshaped view: the same targets, which the source knows without a pass
        }
        if (_maxAbsTarget is null)
        {
            double max = 0;
            for (long start = 0; start < Count; start += 4096)
            {
                using var scope = NewDisposeScope();
                max = Math.Max(max, Read(start, Math.Min(4096, Count - start)).Targets.abs().max().item<double>());
            }
            _maxAbsTarget = max;
        }
        return _maxAbsTarget.Value;
    }

    private double? _maxAbsTarget;

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) Read(long start, long count)
    {
        if (start < 0 || count < 0 || start + count > Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"rows {start} … {start + count - 1} are outside 0 … {Count - 1}");
        }
        var (x, y) = _source.Read(_first + start, count);
        return (x.reshape([count, .. _shape]), y);
    }

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) ReadRows(IReadOnlyList<long> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.FirstOrDefault(r => (ulong)r >= (ulong)Count, -1) is var bad and >= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), bad, $"row index outside 0..{Count - 1}");
        }
        var (x, y) = _source.ReadRows(rows.Select(r => _first + r).ToArray());
        return (x.reshape([rows.Count, .. _shape]), y);
    }

    /// <summary>Disposes the source when it holds anything (files).</summary>
    public void Dispose() => (_source as IDisposable)?.Dispose();

    /// <inheritdoc/>
    /// <remarks>
    /// Rows in memory: the view's rows of them (names kept). Rows in files: only the view's rows are read and priced, not
    /// the whole source (a view of 100 of 60,000 images holds 100).
    /// </remarks>
    public Dataset Load(RunLimits? limits = null)
    {
        if (!_source.Resident)
        {
            return Dataset.ReadAll(this, limits);
        }
        var all = _source.Load(limits);
        var subset = _first == 0 && Count == all.Count ? all : all.Subset(Enumerable.Range((int)_first, Count));
        return subset.WithInputShape(_shape);
    }

    /// <summary>The rows of <c>N</c> or <c>A:B</c>.</summary>
    private static (long First, long Count) Range(string text, int rows, string source)
    {
        var parts = text.Split(':');
        bool Parse(string s, out long v) => long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (parts.Length == 1 && Parse(parts[0], out long n) && n >= 1)
        {
            return n <= rows ? (0, n) : throw new LandscapeInputException($"the rows {text}: {source} has only {rows} rows");
        }
        if (parts.Length == 2 && Parse(parts[0], out long a) && Parse(parts[1], out long b) && a < b)
        {
            return b <= rows ? (a, b - a) : throw new LandscapeInputException($"the rows {text}: {source} has only {rows} rows (rows are counted from 0, B excluded)");
        }
        throw new LandscapeInputException($"the rows '{AppText(text)}' are not N (the first N rows) or A:B (rows A … B − 1, A < B, counted from 0)");
    }

    /// <summary>The sizes of a row shape written <c>C,H,W</c> (positive integers, comma-separated).</summary>
    /// <exception cref="LandscapeInputException">Not a list of positive sizes; the message quotes it.</exception>
    public static long[] ParseShape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sizes = text.Split(',').Select(s => long.TryParse(s.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long v) && v >= 1 ? v : -1).ToArray();
        return sizes.Any(s => s < 1)
            ? throw new LandscapeInputException($"the input shape '{AppText(text)}' is not a list of positive sizes such as 1,8,8")
            : sizes;
    }

    /// <summary>The sizes of <c>C,H,W</c>, whose product must be <paramref name="values"/>.</summary>
    private static long[] Shape(string text, int values, string source)
    {
        var sizes = ParseShape(text);
        long product = sizes.Aggregate(1L, (x, y) => x * y > int.MaxValue ? int.MaxValue + 1L : x * y);
        return product == values ? sizes
            : throw new LandscapeInputException($"the input shape {string.Join(",", sizes)} holds {product} values, but the rows of {source} have {values}");
    }

    private static string AppText(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
