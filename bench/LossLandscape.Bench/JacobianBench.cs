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
/// (the per-row path is timed on R rows and scaled to ℓd), <c>--repeats K</c> (default 5). Every row is the median of K runs
/// after a warm-up, with min and max; ratios are ratios of medians.
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
        int repeats = BenchRunner.Repeats(args);
        bool oneHot = args.Contains("--one-hot");
        var data = DatasetLoader.Load("builtin:digits", oneHot ? TargetSpec.Classes("digit") : TargetSpec.LastColumn).Take(rows);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(hidden, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed: 1));
        var map = new ResidualMap(model, data);
        Console.WriteLine($"digits d = {data.Count}, p = {data.InputDim}, ℓ = {data.OutputDim}, hidden {hidden} (smoolu), n = {mlp.ParameterCount}, J is {map.Constraints} × {mlp.ParameterCount} ({8.0 * map.Constraints * mlp.ParameterCount / 1e9:0.00} GB), torch threads {get_num_threads()}");

        var grad = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            map.Gradient();
        });
        var forward = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            map.Residuals();
        });
        var batched = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            map.Jacobian(JacobianMethod.Batched);
        });
        var fill = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            empty(map.Constraints, mlp.ParameterCount, dtype: float64).fill_(1.0);
        });

        var few = new ResidualMap(model, data.Take(autogradRows));
        // The per-row path is slow (one backward pass per row of J): timed on the first R rows, scaled to ℓd.
        var perRow = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            few.Jacobian(JacobianMethod.Autograd);
        }).Scale((double)map.Constraints / few.Constraints);
        var batchedFew = BenchRunner.Time(repeats, () =>
        {
            using var scope = NewDisposeScope();
            few.Jacobian(JacobianMethod.Batched);
        });

        Console.WriteLine();
        Console.WriteLine($"| measurement | time, median (min–max) of {repeats} after a warm-up | ratio of medians |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| forward pass (H) | {BenchRunner.S(forward)} | |");
        Console.WriteLine($"| forward + backward (∇L), the baseline | {BenchRunner.S(grad)} | 1 |");
        Console.WriteLine($"| batched Jacobian (all {map.Constraints} rows) | {BenchRunner.S(batched)} | {R(batched.Median / grad.Median)} × gradient |");
        Console.WriteLine($"| allocating and writing a tensor of J's size once (memory floor) | {BenchRunner.S(fill)} | {R(fill.Median / grad.Median)} × gradient |");
        Console.WriteLine($"| per-row autograd Jacobian (timed on {few.Constraints} rows, scaled to {map.Constraints}) | {BenchRunner.S(perRow)} | {R(perRow.Median / batched.Median)} × batched |");
        Console.WriteLine($"| batched Jacobian on the same {few.Constraints} rows | {BenchRunner.S(batchedFew)} | |");
        return 0;
    }

    private static string R(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
}
