using System.Diagnostics;
using System.Globalization;
using System.Text;
using LossLandscape.Data;
using LossLandscape.Engine;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 19, finding 3: loading a CSV of Fashion-MNIST's shape (784 pixel columns, integers 0–255 with about half of them
/// 0, and a label 0–9 taken one-hot) at 60 000 and 450 000 rows. Each load runs in a child process of its own, so that its
/// peak resident memory (VmHWM, reset after TorchSharp is set up) is the load's alone; reported as rows per second and as
/// peak over the float64 data d × (p + ℓ) × 8 (goal ≤ 1.5). Baseline in the same run: the whole-file reader that the
/// streaming one replaced (kept here only), at the sizes given by <c>--baseline-rows</c>. Each row is the median of
/// <c>--repeats</c> loads (one count, or one per size; each at least 5) after a warm-up load, with min and max.
/// Options: <c>--rows 60000,450000 --repeats 5 --baseline-rows 60000 --budget-gb 4 --dir /tmp</c>.
/// </summary>
public static class CsvBench
{
    private const int Pixels = 784;
    private const int Classes = 10;

    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        var rowCounts = BenchArgs.Text(args, "--rows", "60000,450000").Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray();
        var repeats = BenchArgs.Text(args, "--repeats", BenchRunner.MinRepeats.ToString(CultureInfo.InvariantCulture)).Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray();
        var baselineRows = BenchArgs.Text(args, "--baseline-rows", "60000").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToHashSet();
        string budget = BenchArgs.Text(args, "--budget-gb", "4");
        string dir = Path.Combine(BenchArgs.Text(args, "--dir", Path.GetTempPath()), $"csv-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        var table = new List<string>
        {
            "| rows d | file | reader | repeats (after a warm-up) | time, median (min–max) | rows/s (median) | peak RSS of the load, median (min–max) | peak / float64 data |",
            "|---|---|---|---|---|---|---|---|",
        };
        try
        {
            for (int k = 0; k < rowCounts.Length; k++)
            {
                int rows = rowCounts[k];
                string path = Path.Combine(dir, $"fashion-{rows}.csv");
                var watch = Stopwatch.StartNew();
                long size = Generate(path, rows);
                Console.WriteLine(FormattableString.Invariant($"generated {path}: {rows} rows × {Pixels + 1} columns, {size / 1e9:0.000} GB, in {watch.Elapsed.TotalSeconds:0.0} s"));
                double dataBytes = 8.0 * rows * (Pixels + Classes);
                int n = repeats[Math.Min(k, repeats.Length - 1)];
                foreach (string reader in baselineRows.Contains(rows) ? new[] { "streaming", "whole-file" } : ["streaming"])
                {
                    var peaks = new List<double>();
                    var time = BenchRunner.Measure(n, () =>
                    {
                        var run = Child(path, reader, budget);
                        string label = peaks.Count == 0 ? " (warm-up)" : "";
                        Console.WriteLine(FormattableString.Invariant($"  {reader} {rows}{label}: {run.Seconds:0.00} s, peak {run.PeakBytes / 1e9:0.000} GB ({run.PeakBytes / dataBytes:0.00}× the data)"));
                        peaks.Add(run.PeakBytes);
                        return run.Seconds;
                    });
                    var m = peaks.Skip(1).Order().ToArray(); // peaks[0] is the warm-up's
                    double mm = Median(m);
                    table.Add(FormattableString.Invariant(
                        $"| {rows:N0} | {size / 1e9:0.000} GB | {reader} | {n} | {BenchRunner.S(time)} | {rows / time.Median:N0} | {mm / 1e9:0.000} GB ({m[0] / 1e9:0.000}–{m[^1] / 1e9:0.000}) | **{mm / dataBytes:0.00}** |"));
                }
                File.Delete(path);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Console.WriteLine();
        Console.WriteLine($"load: {File.ReadAllText("/proc/loadavg").Trim()}");
        foreach (var line in table)
        {
            Console.WriteLine(line);
        }
        return 0;
    }

    /// <summary><c>csv-file PATH ROWS</c>: writes the file the benchmark loads (for timing the <c>landscape</c> command on it).</summary>
    public static int WriteFile(string[] args)
    {
        long size = Generate(args[0], int.Parse(args[1], CultureInfo.InvariantCulture));
        Console.WriteLine(FormattableString.Invariant($"wrote {args[0]}: {args[1]} rows × {Pixels + 1} columns, {size} bytes"));
        return 0;
    }

    /// <summary>The child process: one load of <c>FILE</c> by <c>--reader streaming|whole-file</c>; prints <c>RESULT seconds peak-bytes</c>.</summary>
    public static int Load(string[] args)
    {
        string path = args[0];
        string reader = BenchArgs.Text(args, "--reader", "streaming");
        long budget = (long)(double.Parse(BenchArgs.Text(args, "--budget-gb", "4"), CultureInfo.InvariantCulture) * 1e9);
        TorchRuntime.EnsureInitialized(); // libtorch loaded before the measurement: its memory is the process's, not the load's
        ScaleBench.ResetPeak();
        long before = BenchRunner.Status("VmRSS:");
        var watch = Stopwatch.StartNew();
        var data = reader == "streaming" ? DatasetLoader.Load(path, TargetSpec.Classes("label"), new RunLimits(budget)) : WholeFileReader.Load(path, "label");
        double seconds = watch.Elapsed.TotalSeconds;
        long peak = BenchRunner.Status("VmHWM:") - before;
        if (data.Count < 1 || data.InputDim != Pixels || data.OutputDim != Classes)
        {
            throw new InvalidOperationException($"loaded {data.Count} × {data.InputDim} → {data.OutputDim}");
        }
        Console.WriteLine(FormattableString.Invariant($"RESULT {seconds:R} {peak}"));
        return 0;
    }

    private static (double Seconds, double PeakBytes) Child(string path, string reader, string budget)
    {
        var fields = BenchRunner.Child($"the {reader} load", "csv-load", path, "--reader", reader, "--budget-gb", budget);
        return (double.Parse(fields[0], CultureInfo.InvariantCulture), double.Parse(fields[1], CultureInfo.InvariantCulture));
    }

    /// <summary>The median of sorted values (the mean of the middle two for an even count).</summary>
    private static double Median(double[] sorted) => (sorted[(sorted.Length - 1) / 2] + sorted[sorted.Length / 2]) / 2;

    /// <summary>Writes <paramref name="rows"/> rows of Fashion-MNIST's shape (seed 19); returns the file's size in bytes.</summary>
    internal static long Generate(string path, int rows)
    {
        var rng = new Random(19);
        using (var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20))
        {
            writer.Write(string.Join(',', Enumerable.Range(0, Pixels).Select(j => $"pixel{j + 1}")));
            writer.Write(",label\n");
            var line = new StringBuilder(4 * (Pixels + 1));
            for (int i = 0; i < rows; i++)
            {
                line.Clear();
                for (int j = 0; j < Pixels; j++)
                {
                    // About half of Fashion-MNIST's pixels are 0 (background); the rest spread over 1–255.
                    line.Append(rng.Next(2) == 0 ? 0 : rng.Next(1, 256)).Append(',');
                }
                line.Append(rng.Next(Classes)).Append('\n');
                writer.Write(line);
            }
        }
        return new FileInfo(path).Length;
    }

    /// <summary>
    /// The reader before issue 19, kept as the baseline: the whole file as one string, a string per cell, a d × p
    /// <c>double[,]</c>, and the dataset's copy of it.
    /// </summary>
    private static class WholeFileReader
    {
        public static Dataset Load(string path, string classColumn)
        {
            string text = File.ReadAllText(path);
            string[]? header = null;
            var rows = new List<string[]>();
            using (var reader = new StringReader(text))
            {
                while (reader.ReadLine() is { } line)
                {
                    while (line.Count(c => c == '"') % 2 == 1 && reader.ReadLine() is { } more)
                    {
                        line += "\n" + more;
                    }
                    if (string.IsNullOrWhiteSpace(line))
                    {
                        continue;
                    }
                    var cells = Split(line);
                    if (header is null)
                    {
                        header = cells.Select(c => c.Trim()).ToArray();
                        continue;
                    }
                    rows.Add(cells);
                }
            }
            header ??= [];
            int c = Array.IndexOf(header, classColumn);
            var inputCols = Enumerable.Range(0, header.Length).Where(k => k != c).ToArray();
            var x = new double[rows.Count, inputCols.Length];
            for (int i = 0; i < rows.Count; i++)
            {
                for (int j = 0; j < inputCols.Length; j++)
                {
                    x[i, j] = double.Parse(rows[i][inputCols[j]].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture);
                }
            }
            var labels = rows.Select(r => r[c].Trim()).ToArray();
            var classes = labels.Distinct().OrderBy(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();
            var index = classes.Select((l, k) => (l, k)).ToDictionary(t => t.l, t => t.k);
            var y = new double[rows.Count, classes.Length];
            for (int i = 0; i < rows.Count; i++)
            {
                y[i, index[labels[i]]] = 1.0;
            }
            return new Dataset(x, y, inputCols.Select(k => header[k]).ToArray(), classes.Select(l => $"{classColumn}={l}").ToArray(), path);
        }

        private static string[] Split(string line)
        {
            var cells = new List<string>();
            var cell = new StringBuilder();
            bool quoted = false;
            for (int k = 0; k < line.Length; k++)
            {
                char ch = line[k];
                if (quoted)
                {
                    if (ch == '"' && k + 1 < line.Length && line[k + 1] == '"')
                    {
                        cell.Append('"');
                        k++;
                    }
                    else if (ch == '"')
                    {
                        quoted = false;
                    }
                    else
                    {
                        cell.Append(ch);
                    }
                }
                else if (ch == '"')
                {
                    quoted = true;
                }
                else if (ch == ',')
                {
                    cells.Add(cell.ToString());
                    cell.Clear();
                }
                else if (ch != '\r')
                {
                    cell.Append(ch);
                }
            }
            cells.Add(cell.ToString());
            return cells.ToArray();
        }
    }
}
