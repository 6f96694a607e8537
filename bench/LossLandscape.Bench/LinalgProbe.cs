using System.Diagnostics;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>Times the dense factorizations the certificate relies on, at a given size: <c>linalg --rows M --cols N</c>.</summary>
public static class LinalgProbe
{
    /// <summary>Runs the probe.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int m = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 447;
        int n = args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 1195;
        using var scope = NewDisposeScope();
        var j = randn(m, n);
        void Time(string name, Action a)
        {
            var sw = Stopwatch.StartNew();
            a();
            Console.WriteLine($"{name,-28} {sw.Elapsed.TotalMilliseconds,10:0.0} ms");
        }
        Time("qr of Jᵀ", () => linalg.qr(j.t()));
        var (q, r) = linalg.qr(j.t());
        Time("svd of R", () => linalg.svd(r, fullMatrices: false));
        Time("svdvals of J", () => linalg.svdvals(j));
        Time("eigh of JJᵀ", () => linalg.eigh(j.matmul(j.t())));
        Time("eigvalsh of JJᵀ", () => linalg.eigvalsh(j.matmul(j.t())));
        Console.WriteLine($"threads {get_num_threads()}");
        return 0;
    }
}
