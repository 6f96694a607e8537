using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Times the dense factorizations the certificate relies on, at a given size: <c>linalg --rows M --cols N [--repeats K]</c>;
/// each line the median of K runs (default 5, at least 5) after a warm-up, with min and max.
/// </summary>
public static class LinalgProbe
{
    /// <summary>Runs the probe.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int m = BenchArgs.Int(args, "--rows", 447);
        int n = BenchArgs.Int(args, "--cols", 1195);
        int repeats = BenchRunner.Repeats(args);
        using var scope = NewDisposeScope();
        var j = randn(m, n);
        Console.WriteLine($"J is {m} × {n} float32; median (min–max) of {repeats} after a warm-up");
        void Time(string name, Action a)
        {
            var timing = BenchRunner.Time(repeats, () =>
            {
                using var run = NewDisposeScope();
                a();
            });
            Console.WriteLine($"{name,-28} {timing}");
        }
        Time("qr of Jᵀ", () => linalg.qr(j.t()));
        var (_, r) = linalg.qr(j.t());
        Time("svd of R", () => linalg.svd(r, fullMatrices: false));
        Time("svdvals of J", () => linalg.svdvals(j));
        Time("eigh of JJᵀ", () => linalg.eigh(j.matmul(j.t())));
        Time("eigvalsh of JJᵀ", () => linalg.eigvalsh(j.matmul(j.t())));
        Console.WriteLine($"threads {get_num_threads()}");
        return 0;
    }
}
