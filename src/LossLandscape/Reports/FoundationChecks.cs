using LossLandscape.Problem;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Reports;

/// <summary>
/// Checks of the foundation that every paper claim stands on: the engine takes second derivatives,
/// the batched Jacobian equals reverse-mode autograd row by row, a DAG built from an MLP is the same
/// function, and model files round-trip bit for bit.
/// </summary>
public static class FoundationChecks
{
    /// <summary>
    /// Agreement required between two exact Jacobians: both are exact up to rounding, so a relative
    /// max-norm difference of 1e-12 (about 4500 ε) allows for different summation orders.
    /// </summary>
    public const double JacobianAgreement = 1e-12;

    /// <summary>Runs every check on <paramref name="data"/> (default: the embedded iris data).</summary>
    public static IReadOnlyList<ClaimCheck> Run(Dataset? data = null)
    {
        TorchRuntime.EnsureInitialized();
        data ??= DatasetLoader.Load(DatasetLoader.DefaultSource, TargetSpec.Classes("species"));
        return [DoubleBackward(), BatchedJacobian(data), DagEqualsMlp(data), ModelFileRoundTrip(data)];
    }

    /// <summary>d²/dx² x³ = 6x at x = 1, 2 through TorchSharp's double backward.</summary>
    public static ClaimCheck DoubleBackward()
    {
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 1.0, 2.0 }, requires_grad: true);
        var y = x.Power(3).sum();
        var g = autograd.grad([y], [x], create_graph: true, retain_graph: true)[0];
        var h = autograd.grad([g.sum()], [x])[0].data<double>().ToArray();
        bool pass = h[0] == 6.0 && h[1] == 12.0;
        return new ClaimCheck("Engine: TorchSharp double backward", "d²(x³)/dx² at x = 1, 2",
            $"{h[0]}, {h[1]}", "6, 12", pass, watch.Elapsed.TotalSeconds);
    }

    /// <summary>The batched Jacobian against one autograd backward pass per row of J.</summary>
    public static ClaimCheck BatchedJacobian(Dataset data)
    {
        var watch = Stopwatch.StartNew();
        var small = data.Take(40);
        var mlp = new Mlp(small.InputDim, [new HiddenLayer(12, new SmooLU()), new HiddenLayer(7, new Tanh())], small.OutputDim)
            .WithScaling(InputScaling.Standardize(small));
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed: 1));
        using var map = new ResidualMap(model, small);
        double rel = RelativeDifference(map, map);
        return new ClaimCheck("Jacobian: batched = autograd", Setting(small, mlp),
            Sci(rel) + " rel. max diff", "≤ " + Sci(JacobianAgreement), rel <= JacobianAgreement, watch.Elapsed.TotalSeconds);
    }

    /// <summary>A DAG network built from an MLP computes the same outputs and the same Jacobian.</summary>
    public static ClaimCheck DagEqualsMlp(Dataset data)
    {
        var watch = Stopwatch.StartNew();
        var small = data.Take(40);
        var mlp = new Mlp(small.InputDim, [new HiddenLayer(9, new SmooLU()), new HiddenLayer(5, new Relu())], small.OutputDim)
            .WithScaling(InputScaling.Standardize(small));
        var dag = DagNetwork.FromMlp(mlp);
        var p = mlp.InitialParameters(seed: 2);
        using var scope = NewDisposeScope();
        using var a = new NetworkModel(mlp, p);
        using var b = new NetworkModel(dag, p);
        var x = small.InputsTensor();
        double outputs = (a.Forward(x) - b.Forward(x)).abs().max().item<double>();
        using var mapA = new ResidualMap(a, small);
        using var mapB = new ResidualMap(b, small);
        double jac = RelativeDifference(mapA, mapB, batchedBoth: true);
        double worst = Math.Max(outputs, jac);
        return new ClaimCheck("Networks: DAG built from an MLP = the MLP", Setting(small, mlp),
            Sci(worst) + " max diff (f and J)", "≤ " + Sci(JacobianAgreement), worst <= JacobianAgreement, watch.Elapsed.TotalSeconds);
    }

    /// <summary>Serialize, parse, compare every parameter bit for bit.</summary>
    public static ClaimCheck ModelFileRoundTrip(Dataset data)
    {
        var watch = Stopwatch.StartNew();
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(6, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        var p = mlp.InitialParameters(seed: 3);
        p[0] = -0.0;
        p[1] = double.Epsilon;
        p[2] = 1.0 / 3.0;
        var back = ModelFile.Parse(ModelFile.Serialize(new NetworkPoint(mlp, p)), "round-trip");
        int mismatches = p.Where((v, k) => BitConverter.DoubleToInt64Bits(v) != BitConverter.DoubleToInt64Bits(back.Parameters[k])).Count();
        return new ClaimCheck("Model file: exact float64 round trip", $"mlp n = {mlp.ParameterCount}, with −0, 4.9e−324, 1/3",
            $"{mismatches} differing bits patterns", "0", mismatches == 0, watch.Elapsed.TotalSeconds);
    }

    /// <summary>"data, activations, widths, n, d, ℓ" for a table row.</summary>
    public static string Setting(Dataset data, Mlp mlp) =>
        $"{data.Source}, {string.Join("/", mlp.DistinctActivations.Select(a => a.Name))}, widths {string.Join("-", mlp.Hidden.Select(h => h.Width))}, n = {mlp.ParameterCount}, d = {data.Count}, ℓ = {data.OutputDim}";

    private static double RelativeDifference(ResidualMap first, ResidualMap second, bool batchedBoth = false)
    {
        using var scope = NewDisposeScope();
        var a = first.Jacobian(JacobianMethod.Batched);
        var b = second.Jacobian(batchedBoth ? JacobianMethod.Batched : JacobianMethod.Autograd);
        double scale = Math.Max(a.abs().max().item<double>(), double.Epsilon);
        return (a - b).abs().max().item<double>() / scale;
    }

    private static string Sci(double v) => v.ToString("0.0e+0", CultureInfo.InvariantCulture);
}
