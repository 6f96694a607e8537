using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// The batched Jacobian J ∈ ℝ^{ℓd×n} against (a) one forward and one backward pass of L on the same
/// batch, the cost of a gradient, and (b) the generic path, one autograd backward pass per row of J.
/// Default: digits (d = 1797, p = 64), one hidden layer of width 1797, ℓ = 1, n = 118,606.
/// Options: <c>--rows D</c>, <c>--hidden H</c>, <c>--one-hot</c>, <c>--autograd-rows R</c>
/// (the per-row path is timed on R rows and scaled to ℓd), <c>--repeats K</c>.
/// </summary>
public static class JacobianBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int rows = BenchArgs.Int(args, "--rows", 1797);
        int hidden = BenchArgs.Int(args, "--hidden", 1797);
        int autogradRows = BenchArgs.Int(args, "--autograd-rows", 64);
        int repeats = BenchArgs.Int(args, "--repeats", 5);
        bool oneHot = args.Contains("--one-hot");
        var data = DatasetLoader.Load("builtin:digits", oneHot ? TargetSpec.Classes("digit") : TargetSpec.LastColumn).Take(rows);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(hidden, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed: 1));
        var map = new ResidualMap(model, data);
        Console.WriteLine($"digits d = {data.Count}, p = {data.InputDim}, ℓ = {data.OutputDim}, hidden {hidden} (smoolu), n = {mlp.ParameterCount}, J is {map.Constraints} × {mlp.ParameterCount} ({8.0 * map.Constraints * mlp.ParameterCount / 1e9:0.00} GB), torch threads {get_num_threads()}");

        double grad = BenchRunner.Median(repeats, () =>
        {
            using var scope = NewDisposeScope();
            map.Gradient();
        });
        double forward = BenchRunner.Median(repeats, () =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            map.Residuals();
        });
        double batched = BenchRunner.Median(repeats, () =>
        {
            using var scope = NewDisposeScope();
            map.Jacobian(JacobianMethod.Batched);
        });
        double fill = BenchRunner.Median(repeats, () =>
        {
            using var scope = NewDisposeScope();
            empty(map.Constraints, mlp.ParameterCount, dtype: float64).fill_(1.0);
        });

        var few = new ResidualMap(model, data.Take(autogradRows));
        // The per-row path is slow (one backward pass per row of J): timed once, without a warm-up run.
        var perRowWatch = System.Diagnostics.Stopwatch.StartNew();
        using (var scope = NewDisposeScope())
        {
            few.Jacobian(JacobianMethod.Autograd);
        }
        double perRow = perRowWatch.Elapsed.TotalSeconds / few.Constraints * map.Constraints;
        double batchedFew = BenchRunner.Median(repeats, () =>
        {
            using var scope = NewDisposeScope();
            few.Jacobian(JacobianMethod.Batched);
        });

        Console.WriteLine();
        Console.WriteLine("| measurement | time | ratio |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| forward pass (H) | {BenchRunner.S(forward)} | |");
        Console.WriteLine($"| forward + backward (∇L), the baseline | {BenchRunner.S(grad)} | 1 |");
        Console.WriteLine($"| batched Jacobian (all {map.Constraints} rows) | {BenchRunner.S(batched)} | {R(batched / grad)} × gradient |");
        Console.WriteLine($"| allocating and writing a tensor of J's size once (memory floor) | {BenchRunner.S(fill)} | {R(fill / grad)} × gradient |");
        Console.WriteLine($"| per-row autograd Jacobian (timed on {few.Constraints} rows, scaled to {map.Constraints}) | {BenchRunner.S(perRow)} | {R(perRow / batched)} × batched |");
        Console.WriteLine($"| batched Jacobian on the same {few.Constraints} rows | {BenchRunner.S(batchedFew)} | |");
        return 0;
    }

    private static string R(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
}
