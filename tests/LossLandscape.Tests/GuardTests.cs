using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 13, sections 3–5: sizes the user controls are refused before anything is allocated; Gauss–Newton takes the
/// n × n normal equations when n &lt; ℓd; a point whose loss overflows is refused naming what overflowed; the CLI
/// maps every user error to exit 2 with one line.
/// </summary>
public sealed class GuardTests
{
    /// <summary>40 points, 2 inputs, 1 output, width 3: n = 13 &lt; ℓd = 40, so the normal route applies.</summary>
    private static (Mlp Network, double[] Parameters, Dataset Data) Underparameterized()
    {
        var data = Cases.Data(40, 2, 1, seed: 3);
        var mlp = new Mlp(2, [new HiddenLayer(3, new Tanh())], 1);
        return (mlp, mlp.InitialParameters(4), data);
    }

    [Fact]
    public void Normal_Route_Steps_Equal_The_Dense_Normal_Equations_And_The_Svd_Route()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var (mlp, parameters, data) = Underparameterized();
        using var model = new NetworkModel(mlp, parameters);
        using var map = new ResidualMap(model, data);
        Assert.True(map.ParameterCount < map.Constraints);
        var j = map.Jacobian(JacobianMethod.Autograd);
        var r = map.Residuals();
        using var normal = JacobianFactorization.At(map, JacobianRoute.Normal);
        using var svd = JacobianFactorization.At(map, JacobianRoute.Svd);
        Assert.Equal(JacobianRoute.Normal, normal.Route);
        Assert.Equal("eig of JᵀJ", normal.Rank.Basis);
        Assert.Equal(svd.Rank.Rank, normal.Rank.Rank);
        var jtj = j.t().matmul(j);
        var identity = eye(map.ParameterCount, dtype: float64);
        foreach (double mu in new[] { 0.0, 1e-3, 1.0 })
        {
            // Dense reference: (JᵀJ + μI)s = Jᵀr (full column rank here, so at μ = 0 it is J⁺r).
            var reference = linalg.solve(jtj + (mu * identity), j.t().matmul(r));
            double scale = reference.norm().item<double>();
            double normalError = (normal.Step(r, mu) - reference).norm().item<double>();
            double svdError = (svd.Step(r, mu) - reference).norm().item<double>();
            Assert.True(normalError <= Tolerances.NormalRouteSteps * scale, $"μ = {mu}: |s_normal − s_ref| = {normalError:G3}, |s_ref| = {scale:G3}");
            Assert.True(svdError <= Tolerances.NormalRouteSteps * scale, $"μ = {mu}: |s_svd − s_ref| = {svdError:G3}");
        }
    }

    [Fact]
    public void Gauss_Newton_Takes_The_Normal_Equations_When_n_Is_Below_ld_And_Says_So()
    {
        TorchRuntime.EnsureInitialized();
        var (mlp, parameters, data) = Underparameterized();
        long normalBytes;
        using (var model = new NetworkModel(mlp, parameters))
        using (var map = new ResidualMap(model, data))
        {
            normalBytes = JacobianFactorization.RequiredBytes(map, JacobianRoute.Normal);
            Assert.True(normalBytes < JacobianFactorization.RequiredBytes(map, JacobianRoute.Svd));
            Assert.True(normalBytes < JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram));
            Assert.Equal(JacobianRoute.Normal, JacobianFactorization.ChooseRoute(map, new RunLimits(normalBytes)));
        }

        (double[] Point, JacobianRoute Route, string Description) Train(long budget)
        {
            using var model = new NetworkModel(mlp, parameters);
            using var map = new ResidualMap(model, data);
            using var optimizer = new GaussNewton();
            var run = Trainer.Run(map, optimizer, new TrainingOptions(3), new RunLimits(budget));
            return (run.BestParameters, optimizer.Route, optimizer.Describe());
        }

        var svd = Train(MemoryBudget.DefaultBytes);
        var normal = Train(normalBytes);
        Assert.Equal(JacobianRoute.Svd, svd.Route);
        Assert.Equal(JacobianRoute.Normal, normal.Route);
        Assert.Contains("normal equations", normal.Description);
        double scale = Math.Max(1, svd.Point.Max(Math.Abs));
        double worst = svd.Point.Zip(normal.Point).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst <= Tolerances.NormalRouteSteps * scale, $"max |p_svd − p_normal| = {worst:G3} after 3 steps");
    }

    [Fact]
    public void Gauss_Newton_On_Digits_One_Hot_Width_64_Fits_The_Default_Budget_By_The_Normal_Route()
    {
        // Issue 13: n = 4810 < ℓd = 17 970. The SVD route (four ℓd × n arrays) is over its cap and the Gram route
        // (ℓd × ℓd matrices) over the budget; the normal route holds J and six n × n.
        TorchRuntime.EnsureInitialized();
        var digits = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(digits.InputDim, [new HiddenLayer(64, new SmooLU())], digits.OutputDim);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(0));
        using var map = new ResidualMap(model, digits);
        Assert.Equal((4810, 17970), (map.ParameterCount, map.Constraints));
        Assert.Equal(JacobianRoute.Normal, JacobianFactorization.ChooseRoute(map));
        long normal = JacobianFactorization.RequiredBytes(map, JacobianRoute.Normal);
        Assert.True(normal <= MemoryBudget.DefaultBytes, $"normal route {normal / 1e9:G3} GB");
        Assert.True(JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram) > MemoryBudget.DefaultBytes);
        Assert.True(JacobianFactorization.RequiredBytes(map, JacobianRoute.Svd) > JacobianFactorization.SvdRouteCapBytes);
    }

    [Fact]
    public void Memory_Guards_Refuse_Before_Allocating()
    {
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var hidden = Assert.Throws<MemoryBudgetExceededException>(() => Mlp.RequireFits(64, [10_000_000], 10, 1797));
        var synthetic = Assert.Throws<MemoryBudgetExceededException>(() => SyntheticData.Gaussian(1_000_000_000, 2));
        var grid = Assert.Throws<MemoryBudgetExceededException>(() => LossSlice.RequireFits(100_000, 2));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.True(allocated < RefusalAllocationBytes, $"the refusals allocated {allocated} bytes");
        // The library names what to reduce in words and as data (the CLI names its options for the remedies), never an option.
        foreach (var (e, words, remedy) in new[] { (hidden, "smaller widths", BudgetRemedy.Widths), (synthetic, "synthetic data", BudgetRemedy.Rows), (grid, "smaller grid", BudgetRemedy.Grid) })
        {
            Assert.True(e.RequiredBytes > e.BudgetBytes);
            Assert.Equal(MemoryBudget.DefaultBytes, e.BudgetBytes);
            Assert.Contains(words, e.Message);
            Assert.True(e.Remedies.HasFlag(remedy), $"{e.Message}: remedies {e.Remedies}");
            Assert.DoesNotContain("--", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        // 6·n + 4·d·Σh doubles: n = 65·10⁷ + (10⁷ + 1)·10, Σh + ℓ = 10⁷ + 10.
        Assert.Equal(8 * ((6 * (65e7 + (10 * (1e7 + 1)))) + (4 * 1797 * (1e7 + 10))), hidden.RequiredBytes, 1e6);
        // A network that fits is not refused: digits at h = 10·d, the width of the paper's constructions.
        Mlp.RequireFits(64, [17970], 10, 1797);
    }

    /// <summary>What a refusal may allocate: its message and exception objects, far below the one array it refuses (≥ 2 GiB).</summary>
    private const long RefusalAllocationBytes = 1 << 20;

    [Fact]
    public void A_Point_Whose_Loss_Overflows_Is_Refused_Naming_The_Layer()
    {
        TorchRuntime.EnsureInitialized();
        var data = Cases.Data(40, 2, 1, seed: 3);
        var mlp = new Mlp(2, [new HiddenLayer(3, new SmooLU())], 1); // unbounded σ: an overflowing pre-activation stays ∞ (tanh would map it to ±1)
        var parameters = mlp.InitialParameters(4);
        parameters[0] = 1e308;
        using var model = new NetworkModel(mlp, parameters);
        using var map = new ResidualMap(model, data);
        var e = Assert.Throws<LandscapeInputException>(() => FiniteLoss.RequirePoint(map));
        Assert.Contains("layer 1 of 2", e.Message);
        Assert.Throws<LandscapeInputException>(() => NonFinite.Require(double.NaN, "the trace estimate"));
        Assert.Equal(1.5, NonFinite.Require(1.5, "x"));
    }
}
