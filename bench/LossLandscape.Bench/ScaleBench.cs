using LossLandscape.Operators;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 11 §4, the moonshot: the first 1000 rows of digits, one-hot (ℓd = 10,000), MLP 64-3000-3000-10 (n ≈ 9.2 million),
/// Gauss–Newton without J from He's initialization to a point of M, then <c>certify --method gram</c> there; time and peak
/// memory (VmHWM, reset per phase through /proc/self/clear_refs) per phase. Then the empirical NTK K = JJᵀ by the per-layer
/// factors against PyTorch's own route (functorch <c>vmap(jacrev)</c>, then J Jᵀ) on the same model file and data, in a
/// setting where PyTorch's J fits in memory.
/// Options: <c>--rows 1000 --widths 3000,3000 --activation tanh --steps 30 --budget-gb 14 --seed 1</c>;
/// <c>--ntk-rows 300 --ntk-widths 300,300</c>; <c>--skip-train</c> (phases at the initial point only), <c>--skip-ntk</c>,
/// <c>--python /usr/bin/python3</c>; <c>--save-model F</c> (write the point Gauss–Newton reached), <c>--model F</c> (start from
/// such a point: no training; the model must match --rows, --widths and --activation); <c>--repeats 5</c>.
/// Every phase, Gauss–Newton included (each run from the same starting point), is the median of <c>--repeats</c> runs (at
/// least 5) after a warm-up run, with min and max; its peak memory is the highest of the timed runs, each reset before it.
/// The NTK comparison follows the same rule (<see cref="Ntk"/>).
/// </summary>
public static class ScaleBench
{
    private static readonly List<string> Rows = [];
    private static int _repeats = BenchRunner.MinRepeats;

    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int rows = BenchArgs.Int(args, "--rows", 1000);
        int[] widths = BenchArgs.Text(args, "--widths", "3000,3000").Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
        string activation = BenchArgs.Text(args, "--activation", "tanh");
        int steps = BenchArgs.Int(args, "--steps", 30);
        int seed = BenchArgs.Int(args, "--seed", 1);
        long budget = (long)(double.Parse(BenchArgs.Text(args, "--budget-gb", "14"), CultureInfo.InvariantCulture) * (1L << 30));
        _repeats = BenchRunner.Repeats(args);

        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(rows);
        var mlp = new Mlp(data.InputDim, widths.Select(w => new HiddenLayer(w, ActivationRegistry.Get(activation))).ToArray(), data.OutputDim)
            .WithScaling(InputScaling.Standardize(data));
        Console.WriteLine(FormattableString.Invariant(
            $"digits first {data.Count} rows, one-hot ℓ = {data.OutputDim} (ℓd = {data.Count * data.OutputDim}), MLP {data.InputDim}-{string.Join("-", widths)}-{data.OutputDim} {activation}, n = {mlp.ParameterCount:N0}; budget {budget / (double)(1L << 30):0.#} GiB; torch threads {get_num_threads()}"));
        Console.WriteLine();
        Rows.Add($"| phase | time, median (min–max) of {_repeats} after a warm-up | peak memory (VmHWM), highest run | notes |");
        Rows.Add("|---|---|---|---|");

        string? load = BenchArgs.Text(args, "--model", "") is { Length: > 0 } l ? l : null;
        using var model = load is null
            ? Phase("He initialization (seed 1)", () => new NetworkModel(mlp, mlp.InitialParameters(seed)), _ => "")
            : Phase($"load {load} (a point saved by --save-model)", () => ModelFile.Load(load).ToModel(), m => $"n = {m.ParameterCount:N0}");
        using var map = new ResidualMap(model, data);
        if (load is null && !args.Contains("--skip-train"))
        {
            Train(map, steps, budget);
            if (BenchArgs.Text(args, "--save-model", "") is { Length: > 0 } save)
            {
                ModelFile.Save(save, new NetworkPoint(mlp, ParameterVector.Get(model).data<double>().ToArray()));
            }
        }
        Certify(map, budget);
        Pieces(map, mlp, budget);
        Console.WriteLine();
        foreach (var row in Rows)
        {
            Console.WriteLine(row);
        }
        if (!args.Contains("--skip-ntk"))
        {
            Console.WriteLine();
            Ntk.Run(BenchArgs.Int(args, "--ntk-rows", 300), BenchArgs.Text(args, "--ntk-widths", "300,300"), activation, BenchArgs.Text(args, "--python", "/usr/bin/python3"), _repeats);
        }
        return 0;
    }

    private static void Train(ResidualMap map, int steps, long budget)
    {
        var on = OnManifoldTest.At(map);
        // Stop once the point passes the library's on-M test (the certificate's own criterion): L ≤ ℓd·tol² is implied by it.
        double target = map.Constraints * Math.Pow(on.Tolerance, 2) / 4;
        // Every run, the warm-up included, starts from the same point with a fresh optimizer; the last leaves the model on M.
        using var start = ParameterVector.Get(map.Model);
        int index = -1;
        string describe = "";
        var (time, peak, run) = Repeat(() =>
        {
            string label = index < 0 ? "warm-up" : $"run {index + 1}/{_repeats}";
            index++;
            using var gaussNewton = new GaussNewton();
            describe = gaussNewton.Describe();
            var watch = Stopwatch.StartNew();
            double last = 0;
            var progress = new SynchronousProgress<ProgressReport>(report =>
            {
                if (report is not TrainingProgress p)
                {
                    return;
                }
                double now = watch.Elapsed.TotalSeconds;
                Console.WriteLine(FormattableString.Invariant($"  GN {label} step {p.Step}: L = {p.Loss:e3} ({now - last:0.0} s, peak {Peak():0.00} GB)"));
                last = now;
            });
            return Trainer.Run(map, gaussNewton, new TrainingOptions(steps, target), new RunLimits(budget, Progress: progress));
        }, before: () => ParameterVector.Set(map.Model, start));
        var end = OnManifoldTest.At(map);
        Rows.Add(FormattableString.Invariant(
            $"| Gauss–Newton to M ({describe}) | {BenchRunner.S(time)} | {peak:0.00} GB | {run.Steps} steps, L {run.LossHistory[0]:e2} → {run.BestLoss:e2}, status {run.Status}, max|H| {end.MaxAbsResidual:e2} (tol {end.Tolerance:e2}): on M {(end.Holds ? "yes" : "NO")} |"));
        Console.WriteLine(Rows[^1]);
    }

    private static void Certify(ResidualMap map, long budget)
    {
        var (time, peak, cert) = Repeat(() => Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram), new RunLimits(budget)));
        var j = cert.Jacobian;
        Rows.Add(FormattableString.Invariant(
            $"| certify --method gram (whole: residuals, Gram, rank test, inertia) | {BenchRunner.S(time)} | {peak:0.00} GB | rank {j.Rank} of {cert.Constraints} ({(j.Decided ? "decided" : "NOT decided")}; {j.Basis}; σmin ≥ {j.SigmaMin:e3}, σmax ≈ {j.SigmaMax:e3}, tol {j.Tolerance:e3}); on M {(cert.OnManifold ? "yes" : "no")}; inertia {cert.Hessian.Positive}/{cert.Hessian.Zero}/{cert.Hessian.Negative} ({(cert.Hessian.Decided ? "decided" : "NOT decided")}) |"));
        Console.WriteLine(Rows[^1]);
    }

    /// <summary>The phases of the certificate and of one Gauss–Newton step, timed one by one at the final point (each repeated).</summary>
    private static void Pieces(ResidualMap map, Mlp mlp, long budget)
    {
        var model = (NetworkModel)map.Model;
        var inputs = ((Dataset)map.Data).InputsTensor();
        Phase("per-layer factors (aₖ₋₁, δₖ of every layer: one forward, ℓ backward sweeps)", () =>
        {
            using var scope = NewDisposeScope();
            return mlp.JacobianFactors(model.Parameters, inputs).Count;
        }, c => $"{c} layers");
        using var gram = Phase("Gram matrix K = JJᵀ from the factors (factors included)", () => GramMatrix.Compute(map), k => $"{k.shape[0]} × {k.shape[1]}");
        Phase("Cholesky of K (one Levenberg–Marquardt system)", () =>
        {
            using var scope = NewDisposeScope();
            return linalg.cholesky_ex(gram).Item2.item<int>();
        }, info => info == 0 ? "positive definite" : $"breakdown at {info}");
        Phase("rank test (Lanczos estimates + Cholesky of K − tI)", () => GramCholesky.Decide(gram, GramCholesky.FormingLength(mlp)),
            d => d is null ? "nothing proved" : FormattableString.Invariant($"σmin ≥ {d.ProvenSigmaMin:e3}"));
        var w = randn(map.Constraints, dtype: float64);
        Phase("vector–Jacobian product Jᵀw (one backward pass)", () =>
        {
            using var scope = NewDisposeScope();
            return new JacobianTransposeOperator(map).Apply(w).norm().item<double>();
        }, _ => "");
        if (map.Constraints <= 4000)
        {
            Phase("eigvalsh of K (the eigenvalue route, for comparison)", () =>
            {
                using var scope = NewDisposeScope();
                return linalg.eigvalsh(gram).min().item<double>();
            }, v => FormattableString.Invariant($"λmin {v:e3}"));
        }
        else
        {
            // At ℓd = 10,000 the eigendecomposition is the cost the Cholesky route avoids: measure it at ℓd = 4000 and scale by ℓd³.
            Phase("eigvalsh of the leading 4000 × 4000 block of K (the eigenvalue route, for comparison; × (ℓd/4000)³ for the whole)", () =>
            {
                using var scope = NewDisposeScope();
                return linalg.eigvalsh(gram.narrow(0, 0, 4000).narrow(1, 0, 4000)).min().item<double>();
            }, v => FormattableString.Invariant($"λmin of the block {v:e3}"));
        }
        _ = budget;
    }

    private static T Phase<T>(string name, Func<T> action, Func<T, string> note)
    {
        var (time, peak, result) = Repeat(action);
        Rows.Add(FormattableString.Invariant($"| {name} | {BenchRunner.S(time)} | {peak:0.00} GB | {note(result)} |"));
        Console.WriteLine(Rows[^1]);
        return result;
    }

    /// <summary>
    /// <paramref name="action"/> timed by <see cref="BenchRunner.Measure"/> (a warm-up, then <c>--repeats</c> runs); before
    /// each run, untimed: <paramref name="before"/>, the previous run's result disposed (when it is disposable), and the
    /// peak-memory counter reset. Returns the timing, the highest peak of the timed runs, and the last run's result.
    /// </summary>
    private static (Timing Time, double Peak, T Last) Repeat<T>(Func<T> action, Action? before = null)
    {
        T result = default!;
        var peaks = new List<double>();
        var time = BenchRunner.Measure(_repeats, () =>
        {
            (result as IDisposable)?.Dispose();
            result = default!;
            before?.Invoke();
            ResetPeak();
            var watch = Stopwatch.StartNew();
            result = action();
            double seconds = watch.Elapsed.TotalSeconds;
            peaks.Add(Peak());
            return seconds;
        });
        return (time, peaks.Skip(1).Max(), result); // peaks[0] is the warm-up's
    }

    /// <summary>Resets the kernel's peak-RSS counter of this process (Linux: writing 5 to /proc/self/clear_refs).</summary>
    internal static void ResetPeak()
    {
        GC.Collect();
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>VmHWM of this process in GB (10⁹ bytes).</summary>
    internal static double Peak()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? double.NaN : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024 / 1e9;
    }

    /// <summary>Reports on the calling thread (System.Progress would post to the thread pool and print out of order).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
