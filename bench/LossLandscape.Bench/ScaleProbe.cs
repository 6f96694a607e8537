using LossLandscape.Operators;
using System.Diagnostics;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>Times the dense symmetric factorizations of an m × m Gram-like matrix: <c>scale-probe M</c>.</summary>
public static class ScaleProbe
{
    /// <summary>Runs the probe.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int m = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 10000;
        using var scope = NewDisposeScope();
        var a = randn(m, 300, dtype: float64);
        var k = a.matmul(a.t()).add_(eye(m, dtype: float64));
        void Time(string name, Action act)
        {
            var sw = Stopwatch.StartNew();
            act();
            Console.WriteLine($"{name,-28} {sw.Elapsed.TotalSeconds,10:0.00} s");
        }
        Time("cholesky", () => linalg.cholesky(k));
        var f = randn(m, 3000, dtype: float64);
        var sw0 = Stopwatch.StartNew();
        f.matmul(f.t()).Dispose();
        Console.WriteLine($"matmul {m}x3000 @ 3000x{m}: {sw0.Elapsed.TotalSeconds:0.00} s = {2.0 * m * m * 3000 / sw0.Elapsed.TotalSeconds / 1e9:0.0} GFlop/s");
        Time("DenseOperator", () => new LossLandscape.Operators.DenseOperator(k, isSymmetric: true).Dispose());
        using (var op = new LossLandscape.Operators.DenseOperator(k, isSymmetric: true))
        {
            Time("Lanczos smallest 120", () => LossLandscape.Curvature.Lanczos.Eigenpairs(op, new LossLandscape.Curvature.LanczosOptions(1, LossLandscape.Curvature.SpectrumEnd.Smallest, 120, Seed: 3)));
        }
        Time("ProvesLowerBound", () => LossLandscape.Geometry.GramCholesky.ProvesLowerBound(k, 0.5, 400));
        Time("Decide", () => LossLandscape.Geometry.GramCholesky.Decide(k, 400));
        if (args.Length > 1)
        {
            Time("eigvalsh", () => linalg.eigvalsh(k));
            Time("eigh", () => linalg.eigh(k));
        }
        Console.WriteLine($"threads {get_num_threads()}");
        return 0;
    }
}
