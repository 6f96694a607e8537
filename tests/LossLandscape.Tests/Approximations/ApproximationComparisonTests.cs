using LossLandscape.Approximations;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Approximations;

/// <summary>
/// Issue 23 §2 in the library: <see cref="ApproximationComparison"/>'s errors against dense references, its probe estimate
/// against the dense value within its standard errors, and its refusals.
/// </summary>
public sealed class ApproximationComparisonTests
{
    [Fact]
    public void Errors_Equal_The_Dense_Ones_And_Kfac_Of_The_Linear_Model_Has_None()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-4-3-3 tanh/smoolu scaled");
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var report = ApproximationComparison.Compute(map, new ApproximationOptions(K: 3));
        Assert.Equal(ApproximationComparison.Names, report.Approximations.Select(a => a.Kind));
        var ggn = new GaussNewtonOperator(map).ToDense();
        var exactTop = linalg.eigvalsh(ggn).flip(0).narrow(0, 0, 3).data<double>().ToArray();
        using var kfac = KfacOperator.Create(map);
        var kfacDense = kfac.ToDense();
        var first = report.Approximations[0];
        Assert.Equal("dense", first.FrobeniusMethod);
        Assert.Equal(0.0, first.FrobeniusErrorStdError);
        double expected = (kfacDense - ggn).norm().item<double>() / ggn.norm().item<double>();
        Assert.True(Math.Abs(first.FrobeniusError - expected) <= Tolerances.ExactAgreement * expected, $"{first.FrobeniusError} vs {expected}");
        double traceError = Math.Abs(kfacDense.trace().item<double>() - ggn.trace().item<double>()) / ggn.trace().item<double>();
        Assert.True(Math.Abs(first.TraceError - traceError) <= Tolerances.ExactAgreement, $"{first.TraceError} vs {traceError}");
        foreach (var a in report.Approximations)
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.True(Math.Abs(a.ExactTopEigenvalues[i] - exactTop[i]) <= Tolerances.SecondOrderAgreement * exactTop[0], $"{a.Kind} exact λ{i}");
            }
            Assert.InRange(a.SubspaceOverlap, 0, 3 + Tolerances.ExactAgreement);
            // A's applications; the block diagonal on the dense route is read from G's dense matrix, without products.
            Assert.True(a.Kind == "block" ? a.Products == 0 : a.Products > 0, $"{a.Kind}: {a.Products} products");
            Assert.Equal(3, a.TopEigenvalues.Count);
            Assert.All(a.TopEigenvalueResiduals, r => Assert.True(r <= Tolerances.SecondOrderAgreement * Math.Abs(a.TopEigenvalues[0])));
        }
        // The block diagonal of G against G: the exact blocks, so its trace is exact.
        Assert.True(report.Approximations[3].TraceError <= Tolerances.ExactAgreement);

        // The linear model f(x) = Wx + b under the squared loss: KFAC is G itself.
        var linear = new Mlp(3, [], 3);
        using var linearModel = new NetworkModel(linear, linear.InitialParameters(2));
        using var linearMap = new ResidualMap(linearModel, c.Data);
        var exactKfac = ApproximationComparison.Compute(linearMap, new ApproximationOptions([ApproximationKind.Kfac], K: 4)).Approximations.Single();
        Assert.True(exactKfac.FrobeniusError <= Tolerances.ExactAgreement, $"{exactKfac.FrobeniusError:e2}");
        Assert.True(Math.Abs(exactKfac.SubspaceOverlap - 4) <= Tolerances.SecondOrderAgreement || exactKfac.ExactTopEigenvalues[3] == exactKfac.ExactTopEigenvalues[3]);
    }

    [Fact]
    public void Without_Room_For_Dense_Matrices_The_Frobenius_Error_Is_Estimated_Within_Its_Standard_Error()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-5-3 softplus");
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var kinds = new[] { ApproximationKind.Kfac, ApproximationKind.Diagonal };
        var dense = ApproximationComparison.Compute(map, new ApproximationOptions(kinds, K: 2));
        // A budget below the dense route's 4 n × n matrices (n = 38: 46 KB) but above the probe blocks (4 × n × 30: 36 KB), the
        // factors and Lanczos's basis: the probe route.
        var probed = ApproximationComparison.Compute(map, new ApproximationOptions(kinds, K: 2, FrobeniusProbes: 30, Seed: 3), new RunLimits(MemoryBudgetBytes: 40_000));
        for (int i = 0; i < kinds.Length; i++)
        {
            var (d, p) = (dense.Approximations[i], probed.Approximations[i]);
            Assert.Equal("hutchinson", p.FrobeniusMethod);
            Assert.True(p.FrobeniusErrorStdError > 0);
            Assert.True(Math.Abs(p.FrobeniusError - d.FrobeniusError) <= Tolerances.StandardErrors * p.FrobeniusErrorStdError,
                $"{p.Kind}: {p.FrobeniusError} ± {p.FrobeniusErrorStdError} vs {d.FrobeniusError}");
        }
    }

    [Fact]
    public void K_Out_Of_Range_And_Kinds_That_Need_Layers_On_A_Dag_Are_Refused_In_One_Line()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-5-1 tanh");
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        foreach (int k in new[] { 0, model.ParameterCount + 1 })
        {
            var e = Assert.Throws<LandscapeInputException>(() => ApproximationComparison.Compute(map, new ApproximationOptions(K: k)));
            Assert.Contains("out of range", e.Message);
        }
        var dag = Cases.Dags().First();
        using var dagModel = new NetworkModel(dag.Network, dag.Parameters);
        using var dagMap = new ResidualMap(dagModel, dag.Data);
        var refusal = Assert.Throws<LandscapeInputException>(() => ApproximationComparison.Compute(dagMap, new ApproximationOptions([ApproximationKind.Diagonal, ApproximationKind.Kfac], K: 2)));
        Assert.Contains("KFAC and EKFAC are defined for linear and conv2d layers", refusal.Message);
        Assert.DoesNotContain('\n', refusal.Message);
        // The diagonal needs no layers, and the block diagonal takes a DAG's levels.
        var defined = ApproximationComparison.Compute(dagMap, new ApproximationOptions([ApproximationKind.Diagonal, ApproximationKind.Block], K: 2));
        Assert.All(defined.Approximations, a => Assert.True(a.FrobeniusError >= 0));
    }
}
