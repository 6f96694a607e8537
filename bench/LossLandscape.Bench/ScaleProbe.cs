using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Operators;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Times the dense symmetric factorizations of an m × m Gram-like matrix: <c>scale-probe M [eig] [--repeats K]</c> (a second
/// word adds eigvalsh and eigh); each line the median of K runs (default 5, at least 5) after a warm-up, with min and max.
/// </summary>
public static class ScaleProbe
{
    /// <summary>Runs the probe.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int repeats = BenchRunner.Repeats(args);
        var words = BenchArgs.Positional(args);
        int m = words.Length > 0 ? int.Parse(words[0], CultureInfo.InvariantCulture) : 10000;
        using var scope = NewDisposeScope();
        var a = randn(m, 300, dtype: float64);
        var k = a.matmul(a.t()).add_(eye(m, dtype: float64));
        Console.WriteLine($"M = {m}; median (min–max) of {repeats} after a warm-up");
        Timing Time(string name, Action act)
        {
            var timing = BenchRunner.Time(repeats, () =>
            {
                using var run = NewDisposeScope();
                act();
            });
            Console.WriteLine($"{name,-28} {timing}");
            return timing;
        }
        Time("cholesky", () => linalg.cholesky(k));
        var f = randn(m, 3000, dtype: float64);
        var matmul = Time($"matmul {m}x3000 @ 3000x{m}", () => f.matmul(f.t()));
        Console.WriteLine(FormattableString.Invariant($"  = {2.0 * m * m * 3000 / matmul.Median / 1e9:0.0} GFlop/s (median)"));
        Time("DenseOperator", () => new DenseOperator(k, isSymmetric: true).Dispose());
        using (var op = new DenseOperator(k, isSymmetric: true))
        {
            Time("Lanczos smallest 120", () => Lanczos.Eigenpairs(op, new LanczosOptions(1, SpectrumEnd.Smallest, 120, Seed: 3)).Eigenvectors.Dispose());
        }
        Time("ProvesLowerBound", () => GramCholesky.ProvesLowerBound(k, 0.5, 400));
        Time("Decide", () => GramCholesky.Decide(k, 400));
        if (words.Length > 1)
        {
            Time("eigvalsh", () => linalg.eigvalsh(k));
            Time("eigh", () => linalg.eigh(k));
        }
        Console.WriteLine($"threads {get_num_threads()}");
        return 0;
    }
}
