using System.Diagnostics;
using System.Globalization;

namespace LossLandscape.Bench;

/// <summary>
/// Benchmarks: each times the library against a baseline in the same run and prints ratios.
/// Usage: <c>dotnet run -c Release --project bench/LossLandscape.Bench -- NAME [options]</c>.
/// </summary>
public static class BenchRunner
{
    private static readonly Dictionary<string, (string Description, Func<string[], int> Run)> Benchmarks = new()
    {
        ["scale"] = ("issue 11 §4: Gauss–Newton without J to M and certify --method gram at n ≈ 9.2M, ℓd = 10,000; per-layer NTK vs PyTorch", ScaleBench.Run),
        ["scale-probe"] = ("times cholesky, eigvalsh and eigh of an M × M SPD matrix: scale-probe M", ScaleProbe.Run),
        ["linalg"] = ("times QR, SVD and eigh at a size: --rows M --cols N", LinalgProbe.Run),
        ["certify"] = ("certify --method gram on digits h = 1797 vs the dense-J route to JJᵀ", CertifyBench.Run),
        ["jacobian"] = ("batched Jacobian vs one forward+backward, and vs the per-row autograd path", JacobianBench.Run),
        ["connect"] = ("paths between two trained minima: every method, with and without weight matching, on the settings of issue 10", ConnectBench.Run),
        ["lanczos"] = ("20 smallest eigenvalues of ∇²L at a trained digits point: plain Lanczos vs thick restart, same 2000-HVP budget", LanczosBench.Run),
        ["cluster"] = ("one HVP on digits, n ≈ 10⁶: single process vs 1, 2, 4 landscape worker processes (Orleans), time split and scaling model", ClusterBench.Run),
        ["minibatch"] = ("issue 19 §8: sgd and adam steps per second, L over all rows every step vs once an epoch, on digits and a 60,000-row CSV", MiniBatchBench.Run),
        ["csv"] = ("issue 19: load a CSV of Fashion-MNIST's shape at 60,000 and 450,000 rows: rows/s and peak memory over the float64 data, vs the whole-file reader", CsvBench.Run),
        ["csv-file"] = ("writes the CSV that csv loads: csv-file PATH ROWS (pixels 0–255, about half 0, seed 19; label 0–9)", CsvBench.WriteFile),
        ["csv-load"] = ("one load of a CSV in this process, for csv: csv-load FILE --reader streaming|whole-file --budget-gb G", CsvBench.Load),
        ["hessian"] = ("HVP vs gradient; top-20 by Lanczos vs deflated power iteration; vs a PyTorch Lanczos, on digits", HessianBench.Run),
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
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}, .NET {Environment.Version}, {CpuModel()}");
        return bench.Run(args[1..]);
    }

    /// <summary>The median wall time of <paramref name="repeats"/> runs after one warm-up, in seconds.</summary>
    public static double Median(int repeats, Action action)
    {
        action();
        var times = new List<double>();
        for (int r = 0; r < repeats; r++)
        {
            var watch = Stopwatch.StartNew();
            action();
            times.Add(watch.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    /// <summary>Formats seconds.</summary>
    public static string S(double seconds) => seconds.ToString(seconds < 1 ? "0.0000" : "0.000", CultureInfo.InvariantCulture) + " s";

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
