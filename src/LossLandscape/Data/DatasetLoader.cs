using System.Globalization;
using System.Reflection;
using LossLandscape.Engine;

namespace LossLandscape.Data;

/// <summary>
/// Turns a data argument into rows: a CSV path, an .npz path, <c>idx:DIR</c> (the MNIST family's IDX files),
/// <c>builtin:NAME</c> for the embedded real datasets (digits, iris, diabetes) and Debian's Fashion-MNIST
/// (<c>builtin:fashion-mnist</c>), or <c>synthetic:D,P[,L[,SEED]]</c>.
/// </summary>
public static class DatasetLoader
{
    /// <summary>The embedded datasets.</summary>
    public static IReadOnlyList<string> BuiltinNames { get; } = ["digits", "iris", "diabetes"];

    /// <summary>The data every command uses when none is given: Fisher's iris (150 × 4), <c>builtin:iris</c>.</summary>
    public const string DefaultSource = "builtin:iris";

    /// <summary>Where Debian's package <c>dataset-fashion-mnist</c> puts its IDX files, read as <c>builtin:fashion-mnist</c>.</summary>
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Loads <paramref name="source"/> (or <see cref="DefaultSource"/> when null) with its targets chosen by <paramref name="spec"/>, all rows in memory.</summary>
    /// <param name="source">A CSV or .npz path, <c>idx:DIR</c>, <c>builtin:NAME</c> or <c>synthetic:D,P[,L[,SEED]]</c>; null: <see cref="DefaultSource"/>.</param>
    /// <param name="spec">The target columns.</param>
    /// <param name="limits">The memory budget of the data (the float64 arrays of a CSV, see <see cref="FromCsv"/>; <see cref="SyntheticData.Gaussian"/>).</param>
    /// <param name="split">The split of an IDX source: <c>train</c> (default) or <c>test</c>.</param>
    /// <exception cref="DataFormatException">The data cannot be used; the message says why and where.</exception>
    /// <exception cref="LandscapeInputException">d·p or d·ℓ values do not fit one .NET array.</exception>
    /// <exception cref="MemoryBudgetExceededException">The data would exceed the budget.</exception>
    public static Dataset Load(string? source, TargetSpec spec, RunLimits? limits = null, string split = "train")
    {
        ArgumentNullException.ThrowIfNull(spec);
        source ??= DefaultSource;
        if (ArrayFiles(source, spec, split) is { } files)
        {
            using (files)
            {
                return files.Load(limits);
            }
        }
        if (source.StartsWith("builtin:", StringComparison.Ordinal))
        {
            string name = source["builtin:".Length..];
            RequireBuiltin(name);
            return CsvDatasetReader.Read(() => OpenBuiltin(name), source, spec, Budget(limits));
        }
        if (source.StartsWith("synthetic:", StringComparison.Ordinal))
        {
            return Synthetic(source, limits);
        }
        return FromCsv(source, spec, limits);
    }

    /// <summary>
    /// Opens <paramref name="source"/> as rows read batch by batch: array files (an <c>.npz</c>, <c>idx:DIR</c>,
    /// <c>builtin:fashion-mnist</c>) as an <see cref="ArrayFileSource"/>, each batch read from the files; anything else
    /// loaded into memory as <see cref="Load"/> does. Dispose what it returns when it is disposable (it holds files open).
    /// </summary>
    /// <param name="source">A CSV or .npz path, <c>idx:DIR</c>, <c>builtin:NAME</c> or <c>synthetic:D,P[,L[,SEED]]</c>; null: <see cref="DefaultSource"/>.</param>
    /// <param name="spec">The target columns of a CSV; array files name their targets themselves, and refuse columns.</param>
    /// <param name="limits">The memory budget of data held in memory.</param>
    /// <param name="split">The split of an IDX source: <c>train</c> (default) or <c>test</c>.</param>
    /// <exception cref="DataFormatException">The data cannot be used; the message says why and where.</exception>
    /// <exception cref="MemoryBudgetExceededException">Data held in memory would exceed the budget.</exception>
    public static IDataSource Open(string? source, TargetSpec spec, RunLimits? limits = null, string split = "train")
    {
        ArgumentNullException.ThrowIfNull(spec);
        source ??= DefaultSource;
        return ArrayFiles(source, spec, split) ?? (IDataSource)Load(source, spec, limits);
    }

    /// <summary>Whether <paramref name="source"/> names an .npz file (by its extension).</summary>
    public static bool IsNpz(string source) => source.EndsWith(".npz", StringComparison.OrdinalIgnoreCase);

    /// <summary>The array files <paramref name="source"/> names, opened, or null when it names none.</summary>
    private static ArrayFileSource? ArrayFiles(string source, TargetSpec spec, string split)
    {
        bool npz = IsNpz(source), idx = source.StartsWith("idx:", StringComparison.Ordinal), fashion = source == "builtin:fashion-mnist";
        if (!(npz || idx || fashion))
        {
            return null;
        }
        if (spec.OneHot is not null || spec.Targets.Count > 0)
        {
            throw new DataFormatException($"{source}: array files have no columns to choose: the targets are their labels or their array y (integer class labels of shape (d,) become one-hot targets)");
        }
        if (npz)
        {
            return ArrayFileSource.OpenNpz(source);
        }
        string directory = idx ? source["idx:".Length..] : FashionMnistDirectory;
        if (fashion && !Directory.Exists(directory))
        {
            throw new DataFormatException($"builtin:fashion-mnist reads Debian's package dataset-fashion-mnist ({FashionMnistDirectory}), which is not installed here; install it with: apt-get install dataset-fashion-mnist");
        }
        if (idx && !Directory.Exists(directory))
        {
            throw new DataFormatException($"{source}: no directory {directory}");
        }
        return ArrayFileSource.OpenIdx(directory, split, source);
    }

    /// <summary>
    /// Reads a CSV file with a header row, streaming: one pass checks the rows and counts them, the float64 arrays
    /// (d × p inputs, d × ℓ targets) are priced against the budget of <paramref name="limits"/> before they exist, and a second
    /// pass parses every cell into them. Memory: the data itself, not the file's text.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="spec">The target columns.</param>
    /// <param name="limits">The memory budget of the arrays.</param>
    /// <exception cref="DataFormatException">The file cannot be read or used; the message says why and where.</exception>
    /// <exception cref="LandscapeInputException">d·p or d·ℓ values do not fit one .NET array.</exception>
    /// <exception cref="MemoryBudgetExceededException">The arrays would exceed the budget.</exception>
    public static Dataset FromCsv(string path, TargetSpec spec, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        return CsvDatasetReader.Read(() => CsvReader.OpenFile(path), path, spec, Budget(limits));
    }

    /// <summary>One of the embedded tables (<see cref="BuiltinNames"/>).</summary>
    public static CsvTable Builtin(string name)
    {
        RequireBuiltin(name);
        using var records = OpenBuiltin(name);
        return CsvTable.Read(records, "builtin:" + name);
    }

    /// <summary>Builds a dataset from a parsed table (by the same rules as <see cref="FromCsv"/>).</summary>
    /// <param name="table">The table.</param>
    /// <param name="spec">The target columns.</param>
    /// <param name="limits">The memory budget of the arrays.</param>
    public static Dataset FromTable(CsvTable table, TargetSpec spec, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        return CsvDatasetReader.Read(table.Records, table.Source, spec, Budget(limits));
    }

    private static long Budget(RunLimits? limits) => (limits ?? RunLimits.Default).MemoryBudgetBytes;

    private static void RequireBuiltin(string name)
    {
        if (!BuiltinNames.Contains(name))
        {
            throw new DataFormatException($"builtin:{name}: no such embedded dataset; expected one of: {string.Join(", ", BuiltinNames.Select(n => "builtin:" + n))}, or builtin:fashion-mnist (Debian's package)");
        }
    }

    private static CsvReader OpenBuiltin(string name)
    {
        var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"LossLandscape.Data.{name}.csv")
            ?? throw new InvalidOperationException($"embedded resource for {name} is missing from the build");
        return new CsvReader(new StreamReader(stream), "builtin:" + name);
    }

    /// <summary>
    /// <c>synthetic:D,P[,L[,SEED]]</c>: see <see cref="SyntheticData.Gaussian"/>; defaults L = 1, SEED = 0.
    /// </summary>
    /// <param name="source">The source text.</param>
    /// <param name="limits">The memory budget of the data.</param>
    public static Dataset Synthetic(string source, RunLimits? limits = null)
    {
        var parts = source["synthetic:".Length..].Split(',');
        var values = new int[4] { 0, 0, 1, 0 };
        if (parts.Length is < 2 or > 4)
        {
            throw new DataFormatException($"{source}: expected synthetic:D,P[,L[,SEED]]");
        }
        string[] names = ["row count D", "input dimension P", "output count L", "seed"];
        for (int k = 0; k < parts.Length; k++)
        {
            if (k < 3 && long.TryParse(parts[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out long size) && size > int.MaxValue)
            {
                throw new DataFormatException($"{source}: the {names[k]} {size} is past the largest, {int.MaxValue} (sizes are counted in an int)");
            }
            if (!int.TryParse(parts[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[k]) || (k < 3 && values[k] < 1))
            {
                throw new DataFormatException($"{source}: '{parts[k]}' is not a valid {names[k]}");
            }
        }
        return SyntheticData.Gaussian(values[0], values[1], values[2], values[3], limits);
    }
}
