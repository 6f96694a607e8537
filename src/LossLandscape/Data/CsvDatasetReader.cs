using System.Globalization;
using LossLandscape.Engine;

namespace LossLandscape.Data;

/// <summary>
/// A CSV source read into a <see cref="Dataset"/> in two streaming passes. The first checks the header and the width
/// of every row and counts the rows d; the float64 arrays (d × p inputs, d × ℓ targets) are then priced against the
/// memory budget, and only then allocated; the second pass parses each cell straight into them. Peak memory is the
/// data itself (plus one int per row for one-hot targets): never the file as one string, never a string per cell.
/// </summary>
/// <remarks>
/// The rule of every cell: a number in the invariant culture (<see cref="NumberStyles.Float"/>, white space trimmed),
/// and finite. <c>NaN</c>, <c>inf</c>, <c>Infinity</c>, <c>∞</c> (any case, either sign) and a number past float64's
/// range such as <c>1e999</c> are all refused in one wording, "is not a finite number"; anything else that does not
/// parse "is not a number".
/// </remarks>
internal static class CsvDatasetReader
{
    /// <summary>Reads the records of <paramref name="open"/> (called once per pass) into a dataset with the targets of <paramref name="spec"/>.</summary>
    /// <param name="open">Opens the source at its start; called twice.</param>
    /// <param name="source">The file or resource name, for messages.</param>
    /// <param name="spec">The target columns.</param>
    /// <param name="budgetBytes">The memory budget of the arrays.</param>
    /// <exception cref="DataFormatException">The data cannot be used; the message says why and where.</exception>
    /// <exception cref="LandscapeInputException">d·p or d·ℓ values do not fit one .NET array.</exception>
    /// <exception cref="MemoryBudgetExceededException">The arrays would exceed <paramref name="budgetBytes"/>.</exception>
    public static Dataset Read(Func<ICsvRecords> open, string source, TargetSpec spec, long budgetBytes)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(spec);

        // Pass 1: the header, the columns, the width of every row, the row count d.
        string[] header;
        int[] inputCols, targetCols;
        long rows = 0;
        using (var records = open())
        {
            header = CsvReader.ReadHeader(records, source);
            (inputCols, targetCols) = Columns(header, source, spec);
            while (records.Read())
            {
                CsvReader.RequireWidth(records, header.Length, source);
                rows++;
            }
        }
        if (rows == 0)
        {
            throw new DataFormatException($"{source}: no data rows after the header");
        }

        // The arrays, sized in 64 bits and priced before they exist.
        int p = inputCols.Length;
        int xLength = Dataset.FlatLength(rows, p, $"{source}: the inputs");
        int d = (int)rows; // rows ≤ d·p ≤ Array.MaxLength, p ≥ 1
        bool oneHot = spec.OneHot is not null;
        int yLength = oneHot ? 0 : Dataset.FlatLength(rows, targetCols.Length, $"{source}: the targets");
        long heldBytes = MemoryBudget.DenseMatrixBytes(rows, p) + (oneHot ? sizeof(int) * rows : MemoryBudget.DenseMatrixBytes(rows, targetCols.Length));
        MemoryBudget.Require(Invariant($"the data of {source} ({rows} rows × {p} input columns + {(oneHot ? "a class column" : $"{targetCols.Length} target column{(targetCols.Length == 1 ? "" : "s")}")}, float64)"),
            heldBytes, budgetBytes, BudgetAlternative, BudgetRemedy.Rows);

        // Pass 2: every cell parsed into its place.
        var x = new double[xLength];
        var y = new double[yLength];
        var classes = oneHot ? new ClassColumn(header[targetCols[0]], targetCols[0], d) : null;
        using (var records = open())
        {
            if (!CsvReader.ReadHeader(records, source).SequenceEqual(header))
            {
                throw Changed(source, rows);
            }
            for (int i = 0; i < d; i++)
            {
                if (!records.Read())
                {
                    throw Changed(source, rows);
                }
                CsvReader.RequireWidth(records, header.Length, source);
                if (ParseCells(records.Row, inputCols, x.AsSpan(i * p, p)) is var badInput and >= 0)
                {
                    throw NotANumber(records, badInput, header, source);
                }
                if (classes is not null)
                {
                    classes.Add(records, i, source);
                }
                else if (ParseCells(records.Row, targetCols, y.AsSpan(i * targetCols.Length, targetCols.Length)) is var badTarget and >= 0)
                {
                    throw NotANumber(records, badTarget, header, source);
                }
            }
            if (records.Read())
            {
                throw Changed(source, rows);
            }
        }

        string[] targetNames;
        int outputDim;
        if (classes is not null)
        {
            (y, targetNames) = classes.OneHot(source, heldBytes, budgetBytes);
            outputDim = targetNames.Length;
        }
        else
        {
            targetNames = targetCols.Select(k => header[k]).ToArray();
            outputDim = targetCols.Length;
        }
        return Dataset.Own(x, p, y, outputDim, inputCols.Select(k => header[k]).ToArray(), targetNames, source);
    }

    /// <summary>The library's alternative of a data budget refusal (the CLI names its option for the budget).</summary>
    private const string BudgetAlternative = "use fewer rows or columns of the data, or raise the memory budget";

    /// <summary>The input and target columns of <paramref name="spec"/>; <see cref="DataFormatException"/> for an unknown or repeated column.</summary>
    private static (int[] Inputs, int[] Targets) Columns(string[] header, string source, TargetSpec spec)
    {
        int Column(string name) => Array.IndexOf(header, name) is var k and >= 0
            ? k
            : throw new DataFormatException($"{source}: unknown target column '{name}'; columns are: {string.Join(", ", header)}");

        if (spec.OneHot is not null && spec.Targets.Count > 0)
        {
            throw new DataFormatException($"{source}: give target columns or a one-hot class column, not both");
        }
        var targets = spec.OneHot is not null ? [Column(spec.OneHot)]
            : spec.Targets.Count > 0 ? spec.Targets.Select(Column).ToArray()
            : new[] { header.Length - 1 };
        if (targets.Distinct().Count() != targets.Length)
        {
            throw new DataFormatException($"{source}: a target column is named twice");
        }
        var inputs = Enumerable.Range(0, header.Length).Except(targets).ToArray();
        if (inputs.Length == 0)
        {
            throw new DataFormatException($"{source}: no input columns left after taking the targets");
        }
        return (inputs, targets);
    }

    /// <summary>
    /// Parses the cells <paramref name="columns"/> of a row into <paramref name="values"/>; the column of the first cell
    /// that is not a finite number, or −1. (A method of its own, the loop over every cell, so that the JIT optimizes it
    /// after a few rows rather than running the whole read's first compilation.)
    /// </summary>
    private static int ParseCells(CsvRow cells, int[] columns, Span<double> values)
    {
        for (int j = 0; j < values.Length; j++)
        {
            int k = columns[j];
            if (!TryParse(cells[k].Trim(), out values[j]) || !double.IsFinite(values[j]))
            {
                return k;
            }
        }
        return -1;
    }

    /// <summary>Why a cell is not a finite number, naming file, line and column (see the class remarks).</summary>
    private static DataFormatException NotANumber(ICsvRecords records, int column, string[] header, string source)
    {
        var cell = records.Row[column].Trim();
        string where = $"{source}:{records.Line}:{column + 1}";
        return cell.Length == 0 ? new DataFormatException($"{where}: empty cell in column '{header[column]}'")
            : IsNonFinite(cell) ? new DataFormatException($"{where}: '{cell}' in column '{header[column]}' {NotFinite}")
            : new DataFormatException($"{where}: '{cell}' in column '{header[column]}' is not a number");
    }

    /// <summary>The one wording of a cell that is not finite.</summary>
    internal const string NotFinite = "is not a finite number (NaN and ±Inf are not allowed)";

    /// <summary>
    /// Parses a cell as <see cref="double.TryParse(ReadOnlySpan{char}, NumberStyles, IFormatProvider, out double)"/> in the
    /// invariant culture does; a cell of at most 15 digits (with a sign) is read directly, exactly, the same value.
    /// </summary>
    internal static bool TryParse(ReadOnlySpan<char> cell, out double value)
    {
        // Fast path for integers (pixels, counts, labels): below 10¹⁵ < 2⁵³ every integer is a double, so n is exactly the correctly rounded parse.
        int k = cell.Length > 0 && cell[0] is '-' or '+' ? 1 : 0;
        if (cell.Length - k is > 0 and <= 15)
        {
            long n = 0;
            for (int i = k; i < cell.Length; i++)
            {
                uint digit = (uint)(cell[i] - '0');
                if (digit > 9)
                {
                    return double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
                }
                n = n * 10 + digit;
            }
            value = k == 1 && cell[0] == '-' ? -(double)n : n; // "-0" is −0.0, as double.Parse reads it
            return true;
        }
        return double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>
    /// Whether a cell names a value outside the finite doubles: parsed to NaN or ±∞ (<c>NaN</c>, <c>Infinity</c>, <c>∞</c>,
    /// <c>1e999</c>), or spelled <c>nan</c>, <c>inf</c> or <c>infinity</c> in any case with an optional sign.
    /// </summary>
    internal static bool IsNonFinite(ReadOnlySpan<char> cell)
    {
        if (TryParse(cell, out double v))
        {
            return !double.IsFinite(v);
        }
        var word = cell.Length > 0 && cell[0] is '-' or '+' ? cell[1..] : cell;
        return word.Equals("nan", StringComparison.OrdinalIgnoreCase) || word.Equals("inf", StringComparison.OrdinalIgnoreCase)
            || word.Equals("infinity", StringComparison.OrdinalIgnoreCase) || word.SequenceEqual("∞");
    }

    private static DataFormatException Changed(string source, long rows) =>
        new(Invariant($"{source}: the file changed while it was read (its first reading had {rows} data rows); read it when nothing writes to it"));

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The class labels of a one-hot column as they stream by: each distinct label once (with the line it first appears
    /// on), and per row the index of its label. Labels are integers or text: a numeric column with a non-integer value is
    /// refused, since a real-valued column made into classes gives one class per distinct value.
    /// </summary>
    private sealed class ClassColumn(string name, int column, int rows)
    {
        private readonly Dictionary<string, int> _index = new(StringComparer.Ordinal);
        private readonly List<(string Label, long Line)> _labels = [];
        private readonly int[] _classOf = new int[rows];

        public void Add(ICsvRecords records, int row, string source)
        {
            var label = records.Row[column].Trim();
            if (label.IsEmpty)
            {
                throw new DataFormatException($"{source}:{records.Line}:{column + 1}: empty class label in column '{name}'");
            }
            var lookup = _index.GetAlternateLookup<ReadOnlySpan<char>>();
            if (!lookup.TryGetValue(label, out int k))
            {
                k = _labels.Count;
                string text = label.ToString();
                _index.Add(text, k);
                _labels.Add((text, records.Line));
            }
            _classOf[row] = k;
        }

        /// <summary>
        /// The d × C indicator targets and their names <c>column=label</c>: classes in numeric order when every label is a
        /// number (then each must be a finite integer), else in ordinal string order.
        /// </summary>
        public (double[] Targets, string[] Names) OneHot(string source, long heldBytes, long budgetBytes)
        {
            var values = new double[_labels.Count];
            bool numeric = true;
            for (int k = 0; k < _labels.Count && numeric; k++)
            {
                numeric = TryParse(_labels[k].Label, out values[k]) || IsNonFinite(_labels[k].Label);
                values[k] = numeric && !double.IsFinite(values[k]) ? double.NaN : values[k];
            }
            if (numeric)
            {
                // The first label in file order that is not a finite integer: the classes would be its distinct values.
                var bad = Enumerable.Range(0, _labels.Count).Where(k => !double.IsFinite(values[k]) || values[k] != Math.Floor(values[k]))
                    .Select(k => _labels[k]).OrderBy(l => l.Line).FirstOrDefault();
                if (bad.Label is not null)
                {
                    string where = $"{source}:{bad.Line}:{column + 1}";
                    throw new DataFormatException(IsNonFinite(bad.Label)
                        ? $"{where}: '{bad.Label}' in column '{name}' {NotFinite}"
                        : $"{where}: '{bad.Label}' in class column '{name}' is not an integer; one-hot classes are integers or text labels, and this real-valued column would give {_labels.Count} classes, one per value (take it as a regression target instead)");
                }
            }
            var order = numeric
                ? Enumerable.Range(0, _labels.Count).OrderBy(k => values[k]).ToArray()
                : Enumerable.Range(0, _labels.Count).OrderBy(k => _labels[k].Label, StringComparer.Ordinal).ToArray();
            var rank = new int[order.Length];
            for (int r = 0; r < order.Length; r++)
            {
                rank[order[r]] = r;
            }
            int c = order.Length;
            int length = Dataset.FlatLength(_classOf.Length, c, $"{source}: the one-hot targets of column '{name}'");
            MemoryBudget.Require(Invariant($"the data of {source} ({_classOf.Length} rows, one-hot targets of {c} classes, float64)"),
                heldBytes + MemoryBudget.DenseMatrixBytes(_classOf.Length, c), budgetBytes, BudgetAlternative, BudgetRemedy.Rows);
            var y = new double[length];
            for (int i = 0; i < _classOf.Length; i++)
            {
                y[(long)i * c + rank[_classOf[i]]] = 1.0;
            }
            return (y, order.Select(k => $"{name}={_labels[k].Label}").ToArray());
        }
    }
}
