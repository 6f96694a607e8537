using System.Diagnostics;
using System.Globalization;
using LossLandscape.Construction;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// <c>certify --method gram</c> on digits with h = d = 1797 (n = 118,603, the Lemma 3.3 point), against
/// the dense-J route to the same Gram matrix (form J, then JJᵀ). Each row is the median of <c>--repeats</c> runs (default 5)
/// after a warm-up, with min and max; the construction of the point is set-up, run once. Options: <c>--rows D</c>, <c>--repeats K</c>.
/// </summary>
public static class CertifyBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int rows = BenchArgs.Int(args, "--rows", 1797);
        int repeats = BenchRunner.Repeats(args);
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.LastColumn).Take(rows);
        var watch = Stopwatch.StartNew();
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), [data.Count]));
        double construct = watch.Elapsed.TotalSeconds;
        using var model = built.Point.ToModel();
        var map = new ResidualMap(model, data);
        Console.WriteLine($"digits d = {data.Count}, h = {data.Count} (smoolu), n = {map.ParameterCount}, ℓd = {map.Constraints}; construction {construct:0.0} s (set-up, one run), max|H| {built.Diagnostics.MaxResidual:e2}, torch threads {get_num_threads()}");

        var certify = BenchRunner.Time(repeats, () => Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram)), out var cert);
        var factored = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            GramMatrix.Compute(map);
        });
        var dense = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            var j = map.Jacobian();
            j.matmul(j.t());
        });
        Console.WriteLine();
        Console.WriteLine($"| measurement | time, median (min–max) of {repeats} after a warm-up | ratio of medians |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| certify --method gram (whole certificate: loss, Gram, eig, counts) | {BenchRunner.S(certify)} | goal < 10 s |");
        Console.WriteLine($"| Gram matrix JJᵀ by the per-layer factors (no J) | {BenchRunner.S(factored)} | 1 |");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| Gram matrix by the dense-J route (form J, then JJᵀ) | {BenchRunner.S(dense)} | {dense.Median / factored.Median:0.0} × factored |"));
        Console.WriteLine();
        Console.WriteLine($"certificate: rank {cert.Jacobian.Rank} of {cert.Constraints} ({cert.Jacobian.Basis}, {(cert.Jacobian.Decided ? "decided" : "undecided")}), inertia {cert.Hessian.Positive}/{cert.Hessian.Zero}/{cert.Hessian.Negative}, on M {cert.OnManifold}");
        return 0;
    }
}
