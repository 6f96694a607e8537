using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using LossLandscape.Training;

namespace LossLandscape.Bench;

/// <summary>
/// <c>connect</c>: every method of <see cref="PathConnection"/>, with and without weight matching, on the same two
/// minima (Gauss–Newton from seeds 1 and 2) of each setting of issue 10, with the same budget of gradient evaluations
/// for the trained curves and NEB; one table per setting. Options: <c>--settings iris-tanh,iris-smoolu,diabetes,digits</c>,
/// <c>--budget N</c> (default <see cref="ConnectOptions.DefaultBudget"/>), <c>--methods linear,…</c>, <c>--train-steps N</c>,
/// <c>--repeats 5</c>. Each row's time (the library's own clock, <see cref="ConnectionResult.Seconds"/>) is the median of
/// <c>--repeats</c> runs (at least 5) after a warm-up run, with min and max; the other columns are the last run's, and a
/// note follows a row whose runs did not all agree on them. The endpoints' training is set-up, run once.
/// </summary>
public static class ConnectBench
{
    private sealed record Setting(string Name, string Source, int Width, Activation Activation);

    private static readonly Setting[] Settings =
    [
        new("iris-tanh", "builtin:iris", 32, new Tanh()),
        new("iris-smoolu", "builtin:iris", 32, new SmooLU()),
        new("diabetes", "builtin:diabetes", 64, new Tanh()),
        new("digits", "builtin:digits", 64, new Tanh()),
    ];

    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        var names = BenchArgs.Text(args, "--settings", string.Join(",", Settings.Select(s => s.Name))).Split(',');
        int budget = int.Parse(BenchArgs.Text(args, "--budget", ConnectOptions.DefaultMaxEvaluations.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        int trainSteps = int.Parse(BenchArgs.Text(args, "--train-steps", "3000"), CultureInfo.InvariantCulture);
        int repeats = BenchRunner.Repeats(args);
        var methods = BenchArgs.Text(args, "--methods", "linear,bezier,polychain,neb,manifold").Split(',')
            .Select(m => ConnectMethodText.TryParse(m, out var x) ? x : throw new ArgumentException($"unknown method {m}")).ToList();
        foreach (var name in names)
        {
            var setting = Settings.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"unknown setting {name}");
            RunSetting(setting, methods, budget, trainSteps, repeats);
        }
        return 0;
    }

    private static void RunSetting(Setting setting, IReadOnlyList<ConnectMethod> methods, int budget, int trainSteps, int repeats)
    {
        var data = DatasetLoader.Load(setting.Source, TargetSpec.LastColumn).Dedupe();
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(setting.Width, setting.Activation)], 1).WithScaling(InputScaling.Standardize(data));
        var a = Train(mlp, data, 1, trainSteps);
        var b = Train(mlp, data, 2, trainSteps);
        double tolerance = 1e-10 * Math.Max(1, data.MaxAbsTarget());
        using var model = new NetworkModel(mlp, a.Parameters);
        using var map = new ResidualMap(model, data);
        Console.WriteLine();
        Console.WriteLine($"### {setting.Name}: {setting.Source} (deduped, standardized), ℓ = 1, width {setting.Width} {setting.Activation.Name}, n = {map.ParameterCount}, ℓd = {map.Constraints}");
        Console.WriteLine($"endpoints: Gauss–Newton from seeds 1 and 2: L(A) = {G(a.Loss)} ({a.Status}), L(B) = {G(b.Loss)} ({b.Status}); on-M tolerance {G(tolerance)}; budget {budget}");
        bool onM = a.MaxAbs <= tolerance && b.MaxAbs <= tolerance;
        Console.WriteLine();
        Console.WriteLine($"| method | aligned | max L | barrier | max\\|H\\| | length ratio | vertices | forward | gradient | Jacobian | time, median (min–max) of {repeats} after a warm-up | status | certified |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (bool aligned in new[] { false, true })
        {
            var target = aligned ? WeightMatching.Align(mlp, a.Parameters, b.Parameters, 0).AlignedB : b.Parameters;
            foreach (var method in methods)
            {
                if (method == ConnectMethod.Manifold && !onM)
                {
                    Console.WriteLine($"| manifold | {(aligned ? "yes" : "no")} | endpoints not on M | | | | | | | | | | |");
                    continue;
                }
                var options = new ConnectOptions(MaxEvaluations: budget, Tolerance: tolerance);
                ConnectionResult r = null!; // set by the warm-up run
                var outcomes = new HashSet<string>();
                var time = BenchRunner.Measure(repeats, () =>
                {
                    (r?.Path as IDisposable)?.Dispose(); // the previous run's path
                    r = PathConnection.Run(map, method, a.Parameters, target, options);
                    outcomes.Add(FormattableString.Invariant($"max L {r.Measures.MaxLoss:R}, {r.Path.Vertices.Count} vertices, evaluations {r.Evaluations.Forward}/{r.Evaluations.Gradient}/{r.Evaluations.Jacobian}, {r.Status}"));
                    return r.Seconds;
                });
                var m = r.Measures;
                Console.WriteLine(string.Join(" | ", new[]
                {
                    "| " + method.ToJsonName(), aligned ? "yes" : "no", G(m.MaxLoss), G(m.Barrier), G(m.MaxAbsResidual), G(m.LengthRatio),
                    r.Path.Vertices.Count.ToString(CultureInfo.InvariantCulture), r.Evaluations.Forward.ToString(CultureInfo.InvariantCulture),
                    r.Evaluations.Gradient.ToString(CultureInfo.InvariantCulture), r.Evaluations.Jacobian.ToString(CultureInfo.InvariantCulture),
                    BenchRunner.S(time), r.Status.ToJsonName(), method == ConnectMethod.Manifold ? (r.Certified ? "yes" : "no") : "—",
                }) + " |");
                if (method == ConnectMethod.Manifold && r.Detail is not null)
                {
                    Console.Error.WriteLine($"  manifold ({(aligned ? "aligned" : "unaligned")}): {r.Detail}");
                }
                if (outcomes.Count > 1)
                {
                    Console.WriteLine($"  note: the {repeats + 1} runs of this row (warm-up included) did not all end alike; the row shows the last: {string.Join("; ", outcomes)}");
                }
                (r.Path as IDisposable)?.Dispose();
            }
        }
    }

    private sealed record Endpoint(double[] Parameters, double Loss, double MaxAbs, SolverStatus Status);

    private static Endpoint Train(Mlp mlp, Dataset data, int seed, int steps)
    {
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed));
        using var map = new ResidualMap(model, data);
        var run = Trainer.Run(map, new GaussNewton(), new TrainingOptions(steps));
        using var best = new NetworkModel(mlp, run.BestParameters);
        using var bestMap = new ResidualMap(best, data);
        using var h = bestMap.Residuals();
        return new Endpoint(run.BestParameters, run.BestLoss, h.abs().max().item<double>(), run.Status);
    }

    private static string G(double v) => double.IsFinite(v) ? v.ToString("G3", CultureInfo.InvariantCulture) : "—";
}
