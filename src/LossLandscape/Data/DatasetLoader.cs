using System.Globalization;
using System.Reflection;
using LossLandscape.Engine;

namespace LossLandscape.Data;

/// <summary>
/// Turns a data argument into a <see cref="Dataset"/>: a CSV path, <c>builtin:NAME</c> for the
/// embedded real datasets (digits, iris, diabetes), or <c>synthetic:D,P[,L[,SEED]]</c>.
/// </summary>
public static class DatasetLoader
{
    /// <summary>The embedded datasets.</summary>
    public static IReadOnlyList<string> BuiltinNames { get; } = ["digits", "iris", "diabetes"];

    /// <summary>The data every command uses when none is given: Fisher's iris (150 × 4), <c>builtin:iris</c>.</summary>
    public const string DefaultSource = "builtin:iris";

    /// <summary>Loads <paramref name="source"/> (or <see cref="DefaultSource"/> when null) with its targets chosen by <paramref name="spec"/>.</summary>
    /// <param name="source">A CSV path, <c>builtin:NAME</c> or <c>synthetic:D,P[,L[,SEED]]</c>; null: <see cref="DefaultSource"/>.</param>
    /// <param name="spec">The target columns.</param>
    /// <param name="budgetBytes">The memory budget of synthetic data (<see cref="SyntheticData.Gaussian"/>); default <see cref="MemoryBudget.DefaultBytes"/>.</param>
    /// <exception cref="DataFormatException">The data cannot be used; the message says why and where.</exception>
    /// <exception cref="MemoryBudgetExceededException">Synthetic data would exceed <paramref name="budgetBytes"/>.</exception>
    public static Dataset Load(string? source, TargetSpec spec, long budgetBytes = MemoryBudget.DefaultBytes)
    {
        source ??= DefaultSource;
        if (source.StartsWith("builtin:", StringComparison.Ordinal))
        {
            return FromTable(Builtin(source["builtin:".Length..]), spec);
        }
        if (source.StartsWith("synthetic:", StringComparison.Ordinal))
        {
            return Synthetic(source, budgetBytes);
        }
        return FromCsv(source, spec);
    }

    /// <summary>Reads a CSV file with a header row.</summary>
    public static Dataset FromCsv(string path, TargetSpec spec) => FromTable(CsvTable.Load(path), spec);

    /// <summary>One of the embedded tables (<see cref="BuiltinNames"/>).</summary>
    public static CsvTable Builtin(string name)
    {
        if (!BuiltinNames.Contains(name))
        {
            throw new DataFormatException($"builtin:{name}: no such embedded dataset; expected one of: {string.Join(", ", BuiltinNames.Select(n => "builtin:" + n))}");
        }
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"LossLandscape.Data.{name}.csv")
            ?? throw new InvalidOperationException($"embedded resource for {name} is missing from the build");
        using var reader = new StreamReader(stream);
        return CsvTable.Parse(reader.ReadToEnd(), "builtin:" + name);
    }

    /// <summary>Builds a dataset from a parsed table.</summary>
    public static Dataset FromTable(CsvTable table, TargetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(table);
        ArgumentNullException.ThrowIfNull(spec);
        var header = table.Header;
        int Column(string name) => header.ToList().IndexOf(name) is var k and >= 0
            ? k
            : throw new DataFormatException($"{table.Source}: unknown target column '{name}'; columns are: {string.Join(", ", header)}");

        if (spec.OneHot is not null && spec.Targets.Count > 0)
        {
            throw new DataFormatException($"{table.Source}: give --target or --one-hot, not both");
        }
        var targetCols = spec.OneHot is not null ? [Column(spec.OneHot)]
            : spec.Targets.Count > 0 ? spec.Targets.Select(Column).ToArray()
            : new[] { header.Count - 1 };
        if (targetCols.Distinct().Count() != targetCols.Length)
        {
            throw new DataFormatException($"{table.Source}: a target column is named twice");
        }
        var inputCols = Enumerable.Range(0, header.Count).Except(targetCols).ToArray();
        if (inputCols.Length == 0)
        {
            throw new DataFormatException($"{table.Source}: no input columns left after taking the targets");
        }

        int d = table.Rows.Count;
        var x = new double[d, inputCols.Length];
        for (int i = 0; i < d; i++)
        {
            for (int j = 0; j < inputCols.Length; j++)
            {
                x[i, j] = Number(table, i, inputCols[j]);
            }
        }

        double[,] y;
        string[] targetNames;
        if (spec.OneHot is not null)
        {
            int c = targetCols[0];
            var labels = table.Rows.Select(r => r.Cells[c].Trim()).ToArray();
            for (int i = 0; i < d; i++)
            {
                if (labels[i].Length == 0)
                {
                    throw new DataFormatException($"{table.Source}:{table.Rows[i].Line}:{c + 1}: empty class label in column '{header[c]}'");
                }
            }
            // Classes in numeric order when every label is a number, else in ordinal string order.
            bool numeric = labels.All(l => double.TryParse(l, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
            var classes = (numeric
                ? labels.Distinct().OrderBy(l => double.Parse(l, CultureInfo.InvariantCulture))
                : labels.Distinct().OrderBy(l => l, StringComparer.Ordinal)).ToArray();
            var index = classes.Select((l, k) => (l, k)).ToDictionary(t => t.l, t => t.k);
            y = new double[d, classes.Length];
            for (int i = 0; i < d; i++)
            {
                y[i, index[labels[i]]] = 1.0;
            }
            targetNames = classes.Select(l => $"{header[c]}={l}").ToArray();
        }
        else
        {
            y = new double[d, targetCols.Length];
            for (int i = 0; i < d; i++)
            {
                for (int j = 0; j < targetCols.Length; j++)
                {
                    y[i, j] = Number(table, i, targetCols[j]);
                }
            }
            targetNames = targetCols.Select(k => header[k]).ToArray();
        }
        return new Dataset(x, y, inputCols.Select(k => header[k]).ToArray(), targetNames, table.Source);
    }

    /// <summary>
    /// <c>synthetic:D,P[,L[,SEED]]</c>: see <see cref="SyntheticData.Gaussian"/>; defaults L = 1, SEED = 0.
    /// </summary>
    /// <param name="source">The source text.</param>
    /// <param name="budgetBytes">The memory budget of the data; default <see cref="MemoryBudget.DefaultBytes"/>.</param>
    public static Dataset Synthetic(string source, long budgetBytes = MemoryBudget.DefaultBytes)
    {
        var parts = source["synthetic:".Length..].Split(',');
        var values = new int[4] { 0, 0, 1, 0 };
        if (parts.Length is < 2 or > 4)
        {
            throw new DataFormatException($"{source}: expected synthetic:D,P[,L[,SEED]]");
        }
        for (int k = 0; k < parts.Length; k++)
        {
            if (!int.TryParse(parts[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[k]) || (k < 3 && values[k] < 1))
            {
                throw new DataFormatException($"{source}: '{parts[k]}' is not a valid {(new[] { "row count D", "input dimension P", "output count L", "seed" })[k]}");
            }
        }
        return SyntheticData.Gaussian(values[0], values[1], values[2], values[3], budgetBytes);
    }

    private static double Number(CsvTable table, int row, int column)
    {
        var (line, cells) = table.Rows[row];
        string cell = cells[column].Trim();
        string where = $"{table.Source}:{line}:{column + 1}";
        if (cell.Length == 0)
        {
            throw new DataFormatException($"{where}: empty cell in column '{table.Header[column]}'");
        }
        if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
        {
            throw new DataFormatException($"{where}: '{cell}' in column '{table.Header[column]}' is not a number");
        }
        if (!double.IsFinite(v))
        {
            throw new DataFormatException($"{where}: '{cell}' in column '{table.Header[column]}' is not finite (NaN and ±Inf are not allowed)");
        }
        return v;
    }
}
