using System.Diagnostics;
using System.Globalization;

namespace LossLandscape.Bench;

/// <summary>
/// Benchmarks: each times the library against a baseline in the same run and prints ratios.
/// Usage: <c>dotnet run -c Release --project bench/LossLandscape.Bench -- NAME [options]</c>.
/// Every timing row is a <see cref="Timing"/>: the median of at least <see cref="MinRepeats"/> runs after a warm-up run,
/// printed with its min and max (<see cref="Time"/>, <see cref="Measure"/>); ratios are ratios of medians.
/// </summary>
public static class BenchRunner
{
    private static readonly Dictionary<string, (string Description, Func<string[], int> Run)> Benchmarks = new()
    {
        ["scale"] = ("issue 11 §4: Gauss–Newton without J to M and certify --method gram at n ≈ 9.2M, ℓd = 10,000; per-layer NTK vs PyTorch", ScaleBench.Run),
        ["scale-probe"] = ("times cholesky, eigvalsh and eigh of an M × M SPD matrix: scale-probe M [eig]", ScaleProbe.Run),
        ["linalg"] = ("times QR, SVD and eigh at a size: --rows M --cols N", LinalgProbe.Run),
        ["certify"] = ("certify --method gram on digits h = 1797 vs the dense-J route to JJᵀ", CertifyBench.Run),
        ["jacobian"] = ("batched Jacobian vs one forward+backward, and vs the per-row autograd path", JacobianBench.Run),
        ["connect"] = ("paths between two trained minima: every method, with and without weight matching, on the settings of issue 10", ConnectBench.Run),
        ["lanczos"] = ("20 smallest eigenvalues of ∇²L at a trained digits point: plain Lanczos vs thick restart, same 2000-HVP budget", LanczosBench.Run),
        ["cluster"] = ("one HVP on digits, n ≈ 10⁶: single process vs 1, 2, 4 landscape worker processes (Orleans), time split and scaling model; --membership redis: 3 workers on 3 loopback addresses through a redis-server, TLS off and on", ClusterBench.Run),
        ["minibatch"] = ("issue 19 §8: sgd and adam steps per second, L over all rows every step vs once an epoch, on digits and a 60,000-row CSV", MiniBatchBench.Run),
        ["csv"] = ("issue 19: load a CSV of Fashion-MNIST's shape at 60,000 and 450,000 rows: rows/s and peak memory over the float64 data, vs the whole-file reader", CsvBench.Run),
        ["csv-file"] = ("writes the CSV that csv loads: csv-file PATH ROWS (pixels 0–255, about half 0, seed 19; label 0–9)", CsvBench.WriteFile),
        ["csv-load"] = ("one load of a CSV in this process, for csv: csv-load FILE --reader streaming|whole-file --budget-gb G", CsvBench.Load),
        ["memory"] = ("issue 20 §2: peak memory of evaluate, Lanczos and the trace at 10⁵ and 10⁶ synthetic rows, batches of B against all rows", MemoryBench.Run),
        ["memory-run"] = ("one quantity of memory in this process: memory-run QUANTITY ROWS BATCH INPUTS HIDDEN", MemoryBench.RunOne),
        ["hessian"] = ("HVP vs gradient; top-20 by Lanczos vs deflated power iteration; vs a PyTorch Lanczos, on digits", HessianBench.Run),
        ["approx"] = ("issue 23 §3: KFAC, EKFAC, the diagonal and the block diagonal against the exact GGN at trained digits points (MLP, squared error; CNN, cross-entropy): errors, and one product and one inverse product against one GGN product", ApproxBench.Run),
        ["torchscript"] = ("issue 21 §4: a TorchScript CNN on Fashion-MNIST vs PyTorch on the same module: loss, gradient, HVP, top eigenvalue, trace, HVP time, products", TorchScriptBench.Run),
    };

    /// <summary>Runs the benchmark named by the first argument.</summary>
    public static int Run(string[] args)
    {
        if (args.Length == 0 || !Benchmarks.TryGetValue(args[0], out var bench))
        {
            Console.Error.WriteLine("usage: LossLandscape.Bench NAME [options]; benchmarks:");
            foreach (var (name, (description, _)) in Benchmarks)
            {
                Console.Error.WriteLine($"  {name,-12} {description}");
            }
            return 2;
        }
        string? low = RepeatsBelowRule(args);
        if (low is not null)
        {
            Console.Error.WriteLine($"--repeats {low}: every timing row is the median of at least {MinRepeats} repeats after a warm-up; give {MinRepeats} or more");
            return 2;
        }
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, {CpuModel()}");
        return bench.Run(args[1..]);
    }

    /// <summary>The fewest timed repeats a timing row may have (issue 20 §3): every row is a median of at least this many.</summary>
    public const int MinRepeats = 5;

    /// <summary>The first three fields of /proc/loadavg (1, 5 and 15 minute load averages), or "unknown".</summary>
    public static string LoadAverage()
    {
        try
        {
            return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>
    /// <c>--repeats K</c> (default <see cref="MinRepeats"/>): how many timed runs follow the warm-up of each row. Values below
    /// <see cref="MinRepeats"/> are refused by <see cref="Run"/> before any benchmark starts.
    /// </summary>
    public static int Repeats(string[] args) => BenchArgs.Int(args, "--repeats", MinRepeats);

    /// <summary>
    /// Times <paramref name="action"/>: one warm-up run, not timed, then <paramref name="repeats"/> timed runs; the median
    /// wall time with the fastest and slowest. <paramref name="before"/>, when given, runs before each run, untimed.
    /// </summary>
    public static Timing Time(int repeats, Action action, Action? before = null) => Measure(repeats, () =>
    {
        before?.Invoke();
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    });

    /// <summary>
    /// <see cref="Time(int, Action, Action?)"/> for a run that returns something: <paramref name="last"/> is the last timed
    /// run's result (what the row reports beside its time). Results of earlier runs are dropped, not disposed.
    /// </summary>
    public static Timing Time<T>(int repeats, Func<T> run, out T last)
    {
        ArgumentNullException.ThrowIfNull(run);
        T result = default!;
        var timing = Time(repeats, () => result = run());
        last = result;
        return timing;
    }

    /// <summary>
    /// The same rule for a run that measures itself (a child process, a library result's own clock): <paramref name="run"/>
    /// returns its seconds; it is called once as a warm-up, whose seconds are dropped, then <paramref name="repeats"/> times.
    /// </summary>
    public static Timing Measure(int repeats, Func<double> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (repeats < MinRepeats)
        {
            throw new ArgumentOutOfRangeException(nameof(repeats), repeats, $"a timing row is the median of at least {MinRepeats} repeats");
        }
        run();
        var seconds = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            seconds[r] = run();
        }
        return Timing.Of(seconds);
    }

    /// <summary>Formats seconds.</summary>
    public static string S(double seconds) => F(seconds, seconds) + " s";

    /// <summary>Formats a timing row's cell: <c>0.1234 s (0.1200–0.1300)</c>, median then (min–max).</summary>
    public static string S(Timing timing) => timing?.ToString() ?? throw new ArgumentNullException(nameof(timing));

    /// <summary><paramref name="seconds"/> with four decimals below one second (as <paramref name="scale"/> decides), three above.</summary>
    internal static string F(double seconds, double scale) => seconds.ToString(scale < 1 ? "0.0000" : "0.000", CultureInfo.InvariantCulture);

    /// <summary>The value of <c>--repeats</c> (one count, or one per size separated by commas) when any count is below <see cref="MinRepeats"/>, or null.</summary>
    private static string? RepeatsBelowRule(string[] args)
    {
        int i = Array.IndexOf(args, "--repeats");
        if (i < 0)
        {
            return null;
        }
        if (i + 1 >= args.Length)
        {
            return "(no value)";
        }
        string value = args[i + 1];
        bool ok = value.Split(',').All(v => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) && k >= MinRepeats);
        return ok ? null : value;
    }

    /// <summary>
    /// Runs this benchmark program again as a child process with <paramref name="arguments"/> (a measurement that needs a
    /// fresh process: its own peak memory) and returns the fields of its <c>RESULT …</c> line.
    /// </summary>
    public static string[] Child(string what, params string[] arguments)
    {
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new System.Diagnostics.ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(BenchRunner).Assembly.Location);
        }
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        using var process = System.Diagnostics.Process.Start(start) ?? throw new InvalidOperationException($"could not start {self}");
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var result = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"{what} failed (exit {process.ExitCode}): {stderr.Result.Trim()}");
        return result.Split(' ')[1..];
    }

    /// <summary>A line of /proc/self/status in bytes (VmRSS:, VmHWM:).</summary>
    public static long Status(string key)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(key, StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    private static string CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU";
        }
        catch (IOException)
        {
            return "unknown CPU";
        }
    }
}

/// <summary>
/// One timing row: the median wall time of <paramref name="Repeats"/> runs after a warm-up, with the fastest and slowest,
/// in seconds. Printed as <c>0.1234 s (0.1200–0.1300)</c>.
/// </summary>
/// <param name="Median">The median (the mean of the middle two for an even count).</param>
/// <param name="Min">The fastest run.</param>
/// <param name="Max">The slowest run.</param>
/// <param name="Repeats">How many timed runs.</param>
public sealed record Timing(double Median, double Min, double Max, int Repeats)
{
    /// <summary>The timing of measured runs, in seconds (the warm-up already left out).</summary>
    public static Timing Of(IReadOnlyCollection<double> seconds)
    {
        ArgumentNullException.ThrowIfNull(seconds);
        if (seconds.Count == 0)
        {
            throw new ArgumentException("no runs", nameof(seconds));
        }
        var sorted = seconds.Order().ToArray();
        return new Timing((sorted[(sorted.Length - 1) / 2] + sorted[sorted.Length / 2]) / 2, sorted[0], sorted[^1], sorted.Length);
    }

    /// <summary>Every figure times <paramref name="factor"/> (a time measured on part of the work, scaled to the whole).</summary>
    public Timing Scale(double factor) => new(Median * factor, Min * factor, Max * factor, Repeats);

    /// <summary><c>0.1234 s (0.1200–0.1300)</c>: the median, then (min–max), all to the median's precision.</summary>
    public override string ToString() => $"{BenchRunner.F(Median, Median)} s ({BenchRunner.F(Min, Median)}–{BenchRunner.F(Max, Median)})";
}
