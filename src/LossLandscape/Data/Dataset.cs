using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Data;

/// <summary>
/// A training set S = {(xᵢ, yᵢ)}: d points xᵢ ∈ ℝᵖ with ℓ targets yᵢ ∈ ℝ^ℓ each (Remark 4.2 of the
/// paper for ℓ &gt; 1), held in memory. Each xᵢ may have a shape of its own (<see cref="InputShape"/>: an image's
/// c × h × w), its p values stored row-major. Immutable; all values finite.
/// </summary>
public sealed class Dataset : IDataSource
{
    private readonly double[] _inputs;
    private readonly double[] _targets;
    private readonly long[] _shape;

    /// <summary>Creates a dataset from copies of the inputs (d × p) and targets (d × ℓ).</summary>
    /// <exception cref="ArgumentException">Shapes disagree, a value is not finite, or there are no rows.</exception>
    public Dataset(double[,] inputs, double[,] targets, IReadOnlyList<string>? inputNames = null, IReadOnlyList<string>? targetNames = null, string? source = null)
        : this(Rows.Of(inputs, nameof(inputs)), Rows.Of(targets, nameof(targets)), inputNames, targetNames, source)
    {
    }

    /// <summary>Creates a dataset from copies of jagged rows: <c>inputs[i]</c> = xᵢ ∈ ℝᵖ and <c>targets[i]</c> = yᵢ ∈ ℝ^ℓ, every row of a kind the same length.</summary>
    /// <exception cref="ArgumentException">A row is missing or of another length, the row counts disagree, a value is not finite, or there are no rows.</exception>
    public Dataset(double[][] inputs, double[][] targets, IReadOnlyList<string>? inputNames = null, IReadOnlyList<string>? targetNames = null, string? source = null)
        : this(Rows.Of(inputs, nameof(inputs)), Rows.Of(targets, nameof(targets)), inputNames, targetNames, source)
    {
    }

    /// <summary>
    /// Creates a dataset from copies of tensors: <paramref name="inputs"/> d × p, or d × s₁ × … × s_k for rows of shape
    /// [s₁, …, s_k] (an image's c × h × w), and <paramref name="targets"/> d × ℓ (or a vector of d values, ℓ = 1), of any
    /// real dtype on any device; the values are converted to float64.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor has another shape or is complex, the row counts disagree, a value is not finite, or there are no rows.</exception>
    public Dataset(Tensor inputs, Tensor targets, IReadOnlyList<string>? inputNames = null, IReadOnlyList<string>? targetNames = null, string? source = null)
        : this(Rows.Of(inputs, nameof(inputs), allowVector: false), Rows.Of(targets, nameof(targets), allowVector: true), inputNames, targetNames, source)
    {
    }

    private Dataset(Rows inputs, Rows targets, IReadOnlyList<string>? inputNames, IReadOnlyList<string>? targetNames, string? source)
        : this(inputs.Values, inputs.Width, targets.Values, targets.Width, inputs.Count, targets.Count, inputNames, targetNames, source, inputs.Shape)
    {
    }

    private Dataset(double[] inputs, int inputDim, double[] targets, int outputDim, int rows, int targetRows, IReadOnlyList<string>? inputNames, IReadOnlyList<string>? targetNames, string? source,
        long[]? shape = null)
    {
        // The library's first use sets up TorchSharp (float64 default, huge pages) before a module is built: see TorchRuntime.
        TorchRuntime.EnsureInitialized();
        if (rows != targetRows)
        {
            throw new LandscapeInputException($"{rows} input rows but {targetRows} target rows");
        }
        if (rows == 0)
        {
            throw new LandscapeInputException("a dataset needs at least one row");
        }
        if (inputDim == 0 || outputDim == 0)
        {
            throw new LandscapeInputException("a dataset needs at least one input column and one target column");
        }
        RequireFinite(inputs, inputDim, "inputs");
        RequireFinite(targets, outputDim, "targets");
        _inputs = inputs;
        _targets = targets;
        Count = rows;
        InputDim = inputDim;
        OutputDim = outputDim;
        _shape = shape ?? [inputDim];
        if (_shape.Aggregate(1L, (a, b) => a * b) != inputDim || _shape.Any(s => s < 1))
        {
            throw new LandscapeInputException($"a row shape [{string.Join(", ", _shape)}] does not hold {inputDim} input values");
        }
        InputNames = inputNames?.ToArray() ?? Enumerable.Range(0, inputDim).Select(j => $"x{j}").ToArray();
        TargetNames = targetNames?.ToArray() ?? Enumerable.Range(0, outputDim).Select(j => $"y{j}").ToArray();
        if (InputNames.Count != inputDim || TargetNames.Count != outputDim)
        {
            throw new LandscapeInputException("column names do not match the number of columns");
        }
        Source = source ?? "memory";
    }

    /// <summary>
    /// A dataset holding <paramref name="inputs"/> (d × p, row-major) and <paramref name="targets"/> (d × ℓ, row-major)
    /// themselves, not copies: the caller gives them up (the CSV reader, which fills them once and keeps no reference).
    /// </summary>
    internal static Dataset Own(double[] inputs, int inputDim, double[] targets, int outputDim, IReadOnlyList<string> inputNames, IReadOnlyList<string> targetNames, string source,
        long[]? shape = null) =>
        new(inputs, inputDim, targets, outputDim, inputs.Length / Math.Max(inputDim, 1), targets.Length / Math.Max(outputDim, 1), inputNames, targetNames, source, shape);

    /// <summary>
    /// All rows of <paramref name="source"/> read into a new dataset, in blocks of about 4 MB through
    /// <see cref="IDataSource.Read"/>, after the arrays are priced against the budget of <paramref name="limits"/>: the
    /// one way a source that is not in memory is loaded (<see cref="IDataSource.Load"/>).
    /// </summary>
    /// <exception cref="MemoryBudgetExceededException">The arrays would exceed the budget.</exception>
    internal static Dataset ReadAll(IDataSource source, RunLimits? limits)
    {
        int p = source.InputDim, l = source.OutputDim, d = source.Count;
        (limits ?? RunLimits.Default).Require(FormattableString.Invariant($"the data of {source.Source} ({d} rows × {p} inputs + {l} targets, float64)"),
            MemoryBudget.DenseMatrixBytes(d, p + l), "use fewer rows of the data, or raise the memory budget", BudgetRemedy.Rows);
        var x = new double[FlatLength(d, p, $"{source.Source}: the inputs")];
        var y = new double[FlatLength(d, l, $"{source.Source}: the targets")];
        long block = Math.Max(1, (1 << 19) / (p + l));
        for (long start = 0; start < d; start += block)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(block, d - start);
            var (inputs, targets) = source.Read(start, count);
            inputs.contiguous().data<double>().CopyTo(x, (int)(start * p));
            targets.contiguous().data<double>().CopyTo(y, (int)(start * l));
        }
        var names = Enumerable.Range(0, p).Select(j => $"x{j}").ToArray();
        return Own(x, p, y, l, names, source.TargetNames.ToArray(), source.Source, source.InputShape.ToArray());
    }

    /// <summary>
    /// The number of values of a rows × width block of a dataset (d·p or d·ℓ), computed in 64 bits; refused with one
    /// line naming the limit when one .NET array cannot hold them (<see cref="Array.MaxLength"/> = 2 147 483 591).
    /// </summary>
    /// <param name="rows">The rows d.</param>
    /// <param name="width">The values per row (p or ℓ).</param>
    /// <param name="what">What the block is, for the message (e.g. "t.csv: the inputs").</param>
    /// <exception cref="LandscapeInputException">d·width &gt; <see cref="Array.MaxLength"/>.</exception>
    internal static int FlatLength(long rows, long width, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        // In 64 bits (128 for the message): d·p·8 bytes passes 2³¹ at 451 112 × 784 rows and columns already (issue 19).
        if (width != 0 && rows > Array.MaxLength / width)
        {
            throw new LandscapeInputException(string.Format(CultureInfo.InvariantCulture,
                "{0}: {1} rows × {2} columns = {3} values, more than one .NET array holds ({4}); use fewer rows or columns",
                what, rows, width, (Int128)rows * width, Array.MaxLength));
        }
        return (int)(rows * width);
    }

    /// <summary>The number of points d.</summary>
    public int Count { get; }

    /// <summary>The input dimension p: the values of one row.</summary>
    public int InputDim { get; }

    /// <inheritdoc/>
    /// <remarks>[p] unless the rows were given another shape (a tensor of rank above 2, or <see cref="WithInputShape"/>).</remarks>
    public IReadOnlyList<long> InputShape => _shape;

    /// <inheritdoc/>
    public bool Resident => true;

    /// <summary>The number of targets per point ℓ.</summary>
    public int OutputDim { get; }

    /// <summary>Names of the input columns.</summary>
    public IReadOnlyList<string> InputNames { get; }

    /// <summary>Names of the target columns (for one-hot targets, <c>column=class</c>).</summary>
    public IReadOnlyList<string> TargetNames { get; }

    /// <summary>Where the data came from: a path, <c>builtin:NAME</c>, <c>synthetic:…</c> or <c>memory</c>.</summary>
    public string Source { get; }

    /// <summary>xᵢⱼ.</summary>
    public double Input(int row, int column) => _inputs[(long)row * InputDim + column];

    /// <summary>yᵢⱼ.</summary>
    public double Target(int row, int column) => _targets[(long)row * OutputDim + column];

    /// <summary>Row <paramref name="row"/> of the inputs, a copy.</summary>
    public double[] InputRow(int row) => _inputs.AsSpan(row * InputDim, InputDim).ToArray();

    /// <summary>Row <paramref name="row"/> of the targets, a copy.</summary>
    public double[] TargetRow(int row) => _targets.AsSpan(row * OutputDim, OutputDim).ToArray();

    /// <summary>The inputs as a new d × p float64 tensor (the rows flat, whatever their <see cref="InputShape"/>).</summary>
    public Tensor InputsTensor()
    {
        TorchRuntime.EnsureInitialized();
        return tensor(_inputs, [Count, InputDim], dtype: float64);
    }

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) Read(long start, long count)
    {
        if (start < 0 || count < 0 || start + count > Count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"rows {start} … {start + count - 1} are outside 0 … {Count - 1}");
        }
        TorchRuntime.EnsureInitialized();
        var x = _inputs.AsSpan((int)(start * InputDim), (int)(count * InputDim)).ToArray();
        var y = _targets.AsSpan((int)(start * OutputDim), (int)(count * OutputDim)).ToArray();
        return (tensor(x, [count, .. _shape], dtype: float64), tensor(y, [count, OutputDim], dtype: float64));
    }

    /// <inheritdoc/>
    public (Tensor Inputs, Tensor Targets) ReadRows(IReadOnlyList<long> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        TorchRuntime.EnsureInitialized();
        var x = new double[rows.Count * InputDim];
        var y = new double[rows.Count * OutputDim];
        for (int k = 0; k < rows.Count; k++)
        {
            if ((ulong)rows[k] >= (ulong)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), rows[k], $"row index outside 0..{Count - 1}");
            }
            Array.Copy(_inputs, rows[k] * InputDim, x, (long)k * InputDim, InputDim);
            Array.Copy(_targets, rows[k] * OutputDim, y, (long)k * OutputDim, OutputDim);
        }
        return (tensor(x, [rows.Count, .. _shape], dtype: float64), tensor(y, [rows.Count, OutputDim], dtype: float64));
    }

    /// <inheritdoc/>
    /// <remarks>The dataset itself: its rows are in memory already.</remarks>
    public Dataset Load(RunLimits? limits = null) => this;

    /// <summary>
    /// The same rows viewed in another shape (an image's c × h × w for the p values of a CSV row, stored row-major): the
    /// values and their order are unchanged, only what a model is handed per row.
    /// </summary>
    /// <exception cref="LandscapeInputException">The shape's product is not p, or a size is not positive.</exception>
    public Dataset WithInputShape(IReadOnlyList<long> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return new Dataset(_inputs, InputDim, _targets, OutputDim, Count, Count, InputNames, TargetNames, Source, shape.ToArray());
    }

    /// <summary>The targets as a new d × ℓ float64 tensor.</summary>
    public Tensor TargetsTensor()
    {
        TorchRuntime.EnsureInitialized();
        return tensor(_targets, [Count, OutputDim], dtype: float64);
    }

    /// <summary>The largest |yᵢⱼ|.</summary>
    public double MaxAbsTarget() => _targets.Max(Math.Abs);

    /// <summary>The same inputs with other targets (d × ℓ′).</summary>
    public Dataset WithTargets(double[,] targets, IReadOnlyList<string>? targetNames = null) =>
        new(new Rows(_inputs, Count, InputDim, _shape), Rows.Of(targets, nameof(targets)), InputNames, targetNames, Source);

    /// <summary>The rows listed, in that order.</summary>
    public Dataset Subset(IEnumerable<int> rows)
    {
        var list = rows.ToArray();
        if (list.Length == 0)
        {
            throw new ArgumentException("a subset needs at least one row");
        }
        var x = new double[FlatLength(list.Length, InputDim, "the subset's inputs")];
        var y = new double[FlatLength(list.Length, OutputDim, "the subset's targets")];
        for (int k = 0; k < list.Length; k++)
        {
            if ((uint)list[k] >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), list[k], $"row index outside 0..{Count - 1}");
            }
            Array.Copy(_inputs, (long)list[k] * InputDim, x, (long)k * InputDim, InputDim);
            Array.Copy(_targets, (long)list[k] * OutputDim, y, (long)k * OutputDim, OutputDim);
        }
        return new Dataset(x, InputDim, y, OutputDim, list.Length, list.Length, InputNames, TargetNames, Source, _shape);
    }

    /// <summary>The first <paramref name="count"/> rows.</summary>
    public Dataset Take(int count) => Subset(Enumerable.Range(0, Math.Min(count, Count)));

    /// <summary>
    /// Groups of rows whose inputs are bitwise equal (Lemma 3.3 assumes the xᵢ distinct), each group
    /// sorted, groups ordered by their first row. Empty when all inputs are distinct.
    /// </summary>
    public IReadOnlyList<int[]> FindDuplicateInputs()
    {
        var groups = new Dictionary<string, List<int>>();
        for (int i = 0; i < Count; i++)
        {
            var key = Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_inputs.AsSpan(i * InputDim, InputDim)));
            if (!groups.TryGetValue(key, out var g))
            {
                groups[key] = g = [];
            }
            g.Add(i);
        }
        return groups.Values.Where(g => g.Count > 1).Select(g => g.ToArray()).OrderBy(g => g[0]).ToArray();
    }

    /// <summary>
    /// Keeps the first row of each set of duplicate inputs when their targets agree; throws
    /// <see cref="ArgumentException"/> naming the rows when they conflict.
    /// </summary>
    public Dataset Dedupe()
    {
        var data = this;
        var drop = new HashSet<int>();
        foreach (var group in data.FindDuplicateInputs())
        {
            var first = data.TargetRow(group[0]);
            foreach (int i in group.Skip(1))
            {
                if (!data.TargetRow(i).SequenceEqual(first))
                {
                    throw new LandscapeInputException($"rows {group[0] + 1} and {i + 1} have the same input but different targets; no function fits both (data rows counted from 1)");
                }
                drop.Add(i);
            }
        }
        return drop.Count == 0 ? data : data.Subset(Enumerable.Range(0, data.Count).Where(i => !drop.Contains(i)));
    }

    private static void RequireFinite(double[] values, int width, string what)
    {
        int k = Array.FindIndex(values, v => !double.IsFinite(v));
        if (k >= 0)
        {
            throw new LandscapeInputException($"{what}[{k / width}, {k % width}] is {values[k].ToString(System.Globalization.CultureInfo.InvariantCulture)}; dataset values must be finite (row, column from 0)");
        }
    }

    /// <summary>A row-major copy of a matrix with its shape, from any of the forms the constructors take.</summary>
    private readonly record struct Rows(double[] Values, int Count, int Width, long[]? Shape = null)
    {
        public static Rows Of(double[,] a, string name)
        {
            ArgumentNullException.ThrowIfNull(a, name);
            return new(Flatten(a, name), a.GetLength(0), a.GetLength(1));
        }

        public static Rows Of(double[][] rows, string name)
        {
            ArgumentNullException.ThrowIfNull(rows, name);
            if (Array.FindIndex(rows, r => r is null) is var missing and >= 0)
            {
                throw new LandscapeInputException($"{name} row {missing} is null");
            }
            int width = rows.Length == 0 ? 0 : rows[0].Length;
            if (Array.FindIndex(rows, r => r.Length != width) is var odd and >= 0)
            {
                throw new LandscapeInputException($"{name} row {odd} has {rows[odd].Length} values, row 0 has {width}");
            }
            var flat = new double[FlatLength(rows.Length, width, name)];
            for (int i = 0; i < rows.Length; i++)
            {
                Array.Copy(rows[i], 0, flat, (long)i * width, width);
            }
            return new(flat, rows.Length, width);
        }

        public static Rows Of(Tensor t, string name, bool allowVector)
        {
            ArgumentNullException.ThrowIfNull(t, name);
            if (!(t.dim() == 2 || (allowVector && t.dim() == 1) || (!allowVector && t.dim() > 2)))
            {
                string expected = allowVector ? "a d × ℓ tensor or a vector of d values" : "a d × p tensor, or d × s₁ × … × s_k for rows of shape [s₁, …, s_k]";
                throw new LandscapeInputException($"{name} must be {expected}; got shape [{string.Join(", ", t.shape)}]");
            }
            if (t.is_complex())
            {
                throw new LandscapeInputException($"{name} is {t.dtype}; a dataset holds real values");
            }
            long[] shape = t.dim() == 1 ? [1] : t.shape[1..];
            long width = shape.Aggregate(1L, (a, b) => a * b);
            _ = FlatLength(t.shape[0], width, name);
            using var scope = NewDisposeScope();
            var values = t.detach().to(float64).cpu().contiguous().reshape(-1).data<double>().ToArray();
            return new(values, (int)t.shape[0], (int)width, t.dim() > 2 ? shape : null);
        }

        private static double[] Flatten(double[,] a, string name)
        {
            int length = FlatLength(a.GetLongLength(0), a.GetLongLength(1), name);
            var flat = new double[length];
            // Not Buffer.BlockCopy: its byte count is an int, which 8·d·p passes at 2³¹ (a 451 112 × 784 CSV failed there, issue 19).
            MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<byte, double>(ref MemoryMarshal.GetArrayDataReference(a)), length).CopyTo(flat);
            return flat;
        }
    }
}
