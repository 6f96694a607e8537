using LossLandscape.Operators;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Reports;
using LossLandscape.Training;
using static LossLandscape.Bench.BenchArgs;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 11 §3: the 20 smallest eigenvalues of ∇²L at a trained point, plain Lanczos (full re-orthogonalisation, no restart)
/// against thick-restart Lanczos (Wu &amp; Simon 2000), with the budget of 2000 Hessian-vector products, verification included, for thick restart; plain Lanczos runs its own
/// default steps (see <c>--plain-steps</c>).
/// Setting: the trained-spectra study (docs/trained-spectra.md): the first 200 rows of digits without constant pixels,
/// one-hot ℓ = 10 (ℓd = 2000), MLP p′-h-10 tanh, trained by Adam for 2000 full-batch steps from He's initialization (seed 1):
/// a point near M but not on it, where the bottom of the spectrum is a cluster near 0 with negative eigenvalues in it.
/// Options: <c>--hidden 64</c> (n = 4106; 267 gives n = 17,098), <c>--k 20</c>, <c>--budget 2000</c>, <c>--tolerance 1e-6</c>,
/// <c>--basis M</c> (thick restart's m; default the library's), <c>--adam-steps 2000</c>, <c>--plain-steps S</c> (plain Lanczos's
/// steps; default its own, min(n, max(100, 10k)) = 200: with S = budget − k it re-solves an S × S tridiagonal eigenproblem at
/// every step, O(S⁴) in all, and did not finish in 15 minutes at S = 1980), <c>--repeats 5</c>. Each method's time is the
/// median of <c>--repeats</c> runs (at least 5) after a warm-up run, with min and max; the training is set-up, run once.
/// </summary>
public static class LanczosBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int hidden = Int(args, "--hidden", 64);
        int k = Int(args, "--k", 20);
        int budget = Int(args, "--budget", 2000);
        int adamSteps = Int(args, "--adam-steps", 2000);
        int? plainSteps = args.Contains("--plain-steps") ? Int(args, "--plain-steps", 0) : null;
        int? basis = args.Contains("--basis") ? Int(args, "--basis", 0) : null;
        double tolerance = double.Parse(Text(args, "--tolerance", "1e-6"), CultureInfo.InvariantCulture);
        int repeats = BenchRunner.Repeats(args);

        var data = TrainedSpectra.DropConstantInputs(DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(200));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(hidden, ActivationRegistry.Get("tanh"))], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
        using var map = new ResidualMap(model, data);
        var watch = Stopwatch.StartNew();
        TrainingResult run;
        using (var adam = new Adam())
        {
            run = Trainer.Run(map, adam, new TrainingOptions(adamSteps));
        }
        double trainSeconds = watch.Elapsed.TotalSeconds;
        var hessian = new HessianOperator(map);
        long n = mlp.ParameterCount;
        Console.WriteLine(FormattableString.Invariant(
            $"digits first {data.Count} rows, p′ = {data.InputDim}, ℓ = {data.OutputDim} (ℓd = {map.Constraints}), MLP {data.InputDim}-{hidden}-{data.OutputDim} tanh, n = {n}; Adam {adamSteps} steps in {trainSeconds:0.0} s (set-up, one run), L = {run.BestLoss:G3}; torch threads {get_num_threads()}"));

        // Plain Lanczos with its default steps min(n, max(100, 10k)) unless --plain-steps: the whole budget in one basis (1980 steps)
        // does not finish in 15 minutes, since it re-solves the m × m tridiagonal eigenproblem at every step (O(m⁴) in all).
        // Both start from their fixed seed, so every run takes the same steps; the rows report the last run.
        var plainSeconds = BenchRunner.Time(repeats, () =>
        {
            var r = Lanczos.Eigenpairs(hessian, new LanczosOptions(k, SpectrumEnd.Smallest, MaxIterations: plainSteps, Tolerance: tolerance, VerifyResiduals: true));
            r.Eigenvectors.Dispose();
            return r;
        }, out var plain);

        var thickSeconds = BenchRunner.Time(repeats, () =>
        {
            var r = ThickRestartLanczos.Eigenpairs(hessian, new ThickRestartOptions(k, SpectrumEnd.Smallest, basis, budget, tolerance));
            r.Eigenvectors.Dispose();
            return r;
        }, out var thick);

        string E(double x) => x.ToString("0.0e+0", CultureInfo.InvariantCulture);
        double plainScale = plain.Eigenvalues.Count > 0 ? Math.Max(Math.Abs(plain.Eigenvalues.Max()), thick.NormEstimate) : thick.NormEstimate;
        Console.WriteLine();
        Console.WriteLine($"| method (20 smallest, ‖Hv − λv‖ ≤ {E(tolerance)}·‖H‖, budget {budget} HVPs) | basis vectors | converged | negative (converged) | products | time, median (min–max) of {repeats} after a warm-up | worst residual / ‖H‖ |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        Console.WriteLine(Row($"plain Lanczos, full re-orthogonalisation ({plain.Iterations} steps, {plain.Status})", plain.Iterations,
            plain.Eigenvalues, plain.Converged, plain.ResidualNorms, plain.Applications, plainSeconds, plainScale));
        Console.WriteLine(Row($"thick-restart Lanczos (m = {thick.BasisSize}, {thick.Restarts} restarts, {thick.Steps} steps, {thick.Status})", thick.LargestBasis,
            thick.Eigenvalues, thick.Converged, thick.ResidualNorms, thick.Applications, thickSeconds, thick.NormEstimate));
        Console.WriteLine();
        Console.WriteLine($"‖H‖ estimate (max |Ritz value|, thick restart): {thick.NormEstimate.ToString("G6", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"plain: {Values(plain.Eigenvalues, plain.Converged)}");
        Console.WriteLine($"thick: {Values(thick.Eigenvalues, thick.Converged)}");
        return 0;
    }

    private static string Row(string name, int basis, IReadOnlyList<double> values, IReadOnlyList<bool> converged, IReadOnlyList<double> residuals, long products, Timing seconds, double scale)
    {
        int ok = converged.Count(c => c);
        int negative = values.Where((v, i) => v < 0 && converged[i]).Count();
        double worst = residuals.DefaultIfEmpty(double.NaN).Max() / scale;
        return FormattableString.Invariant($"| {name} | {basis} | {ok}/{values.Count} | {negative} | {products} | {BenchRunner.S(seconds)} | {worst:0.0e+0} |");
    }

    private static string Values(IReadOnlyList<double> values, IReadOnlyList<bool> converged) =>
        string.Join(", ", values.Select((v, i) => v.ToString("G4", CultureInfo.InvariantCulture) + (converged[i] ? "" : "?")));
}
