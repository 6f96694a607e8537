using LossLandscape.Operators;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Curvature;

public class CurvatureOperatorTests
{
    public static TheoryData<string> CaseNames() => Cases.Names();

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Hessian_GaussNewton_And_Residual_Term_Equal_Dense_Autograd_References(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        var hessian = CurvatureReference.Hessian(c.Network, c.Parameters, c.Data);
        var j = map.Jacobian();
        var ggn = 2 * j.t().mm(j);

        var hOp = new HessianOperator(map);
        var gOp = new GaussNewtonOperator(map);
        var rOp = new ResidualTermOperator(map);
        var hDense = hOp.ToDense();
        var gDense = gOp.ToDense(blockSize: 7);
        var rDense = rOp.ToDense();

        Assert.True(CurvatureReference.Relative(hessian, hDense) <= Tolerances.SecondOrderAgreement, $"H: {CurvatureReference.Relative(hessian, hDense):e2}");
        Assert.True(CurvatureReference.Relative(ggn, gDense) <= Tolerances.SecondOrderAgreement, $"G: {CurvatureReference.Relative(ggn, gDense):e2}");
        // ∇²L = G + R: the residual term against the dense difference, relative to the Hessian's scale.
        double scale = hessian.abs().max().item<double>();
        double residualError = (hessian - ggn - rDense).abs().max().item<double>() / scale;
        Assert.True(residualError <= Tolerances.SecondOrderAgreement, $"R: {residualError:e2}");
        Assert.Equal(model.ParameterCount, hOp.Applications);
        Assert.Equal(model.ParameterCount, rOp.Hessian.Applications);
        Assert.True(hDense.abs().max().item<double>() > 0);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Jacobian_Operator_And_Its_Adjoint_Equal_The_Exact_Jacobian(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data, batchSize: 4);
        var j = map.Jacobian();
        var jOp = new JacobianOperator(map);
        var jtOp = jOp.Adjoint();
        Assert.IsType<JacobianTransposeOperator>(jtOp);
        Assert.Equal(map.Constraints, jOp.Rows);
        Assert.Equal(map.ParameterCount, jOp.Columns);
        Assert.True(CurvatureReference.Relative(j, jOp.ToDense()) <= Tolerances.SecondOrderAgreement);
        Assert.True(CurvatureReference.Relative(j.t(), jtOp.ToDense()) <= Tolerances.SecondOrderAgreement);
    }

    [Fact]
    public void Apply_And_ApplyMatrix_Agree_And_Count_Applications()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-4-3-3 tanh/smoolu scaled");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data, batchSize: 3);
        int n = model.ParameterCount;
        var block = tensor(SeededNormal.Vector(new Random(1), n * 4), dtype: float64).reshape(n, 4);
        foreach (LinearOperator op in new LinearOperator[] { new HessianOperator(map), new GaussNewtonOperator(map), new ResidualTermOperator(map) })
        {
            var together = op.ApplyMatrix(block);
            var apart = stack(Enumerable.Range(0, 4).Select(k => op.Apply(block.select(1, k))).ToArray(), 1);
            Assert.True(CurvatureReference.Relative(together, apart) <= Tolerances.SecondOrderAgreement, op.GetType().Name);
            Assert.Equal(8, op.Applications);
        }
        var jOp = new JacobianOperator(map);
        var w = tensor(SeededNormal.Vector(new Random(2), map.Constraints * 3), dtype: float64).reshape(map.Constraints, 3);
        var jtw = jOp.Adjoint().ApplyMatrix(w);
        var jv = jOp.ApplyMatrix(block.narrow(1, 0, 3));
        // ⟨Jv, w⟩ = ⟨v, Jᵀw⟩, column by column.
        var left = jv.mul(w).sum(0L);
        var right = block.narrow(1, 0, 3).mul(jtw).sum(0L);
        Assert.True(CurvatureReference.Relative(left, right) <= Tolerances.SecondOrderAgreement);
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 smoolu/smoolu scaled")]
    [InlineData("dag shared tanh ℓ=3")]
    [InlineData("mlp 3-5-1 relu")]
    public void Operators_Do_Not_Depend_On_The_Batch_Size(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var whole = new ResidualMap(model, c.Data);
        foreach (int batch in new[] { 1, 2, 5 })
        {
            var pieces = new ResidualMap(model, c.Data, batchSize: batch);
            Assert.True(CurvatureReference.Relative(new HessianOperator(whole).ToDense(), new HessianOperator(pieces).ToDense()) <= Tolerances.SecondOrderAgreement);
            Assert.True(CurvatureReference.Relative(new GaussNewtonOperator(whole).ToDense(), new GaussNewtonOperator(pieces).ToDense()) <= Tolerances.SecondOrderAgreement);
            Assert.True(CurvatureReference.Relative(new JacobianOperator(whole).ToDense(), new JacobianOperator(pieces).ToDense()) <= Tolerances.SecondOrderAgreement);
        }
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(3.0)]
    [InlineData(4.5)]
    public void Other_Exponents_Split_As_Jt_Diag_Second_Derivative_J_Plus_Residual_Term(double a)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-5-3 softplus");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data, a, batchSize: 3);
        var hessian = CurvatureReference.Hessian(c.Network, c.Parameters, c.Data, a);
        var j = map.Jacobian();
        // ℓ″(h) = a(a − 1)|h|^{a−2}
        var weights = map.Residuals().abs().pow(a - 2).mul(a * (a - 1));
        var ggn = a == 1.0 ? zeros_like(hessian) : j.t().mm(j * weights.unsqueeze(1));
        Assert.True(CurvatureReference.Relative(hessian, new HessianOperator(map).ToDense()) <= Tolerances.SecondOrderAgreement);
        var g = new GaussNewtonOperator(map).ToDense();
        Assert.True((ggn - g).abs().max().item<double>() <= Tolerances.SecondOrderAgreement * hessian.abs().max().item<double>());
    }

    [Fact]
    public void Operators_Work_For_Any_TorchSharp_Module_And_Match_Gradient_Differences()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        manual_seed(5);
        var module = nn.Sequential(("l1", nn.Linear(3, 5)), ("act", nn.Tanh()), ("l2", nn.Linear(5, 2)));
        var model = new ModuleModel(module, 3, 2);
        var data = Cases.Data(6, 3, 2, 11);
        var map = new ResidualMap(model, data, batchSize: 4);
        var fd = CurvatureReference.HessianByGradientDifferences(map, Tolerances.FiniteDifferenceStep);
        var h = new HessianOperator(map).ToDense();
        Assert.True(CurvatureReference.Relative(fd, h) <= Tolerances.GradientDifferences, $"{CurvatureReference.Relative(fd, h):e2}");
        var j = map.Jacobian();
        Assert.True(CurvatureReference.Relative(2 * j.t().mm(j), new GaussNewtonOperator(map).ToDense()) <= Tolerances.SecondOrderAgreement);
        Assert.True(CurvatureReference.Relative(j, new JacobianOperator(map).ToDense()) <= Tolerances.SecondOrderAgreement);
    }

    [Fact]
    public void Project_Network_Hessian_Matches_Gradient_Differences()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("dag shared smoolu ℓ=3");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data, batchSize: 4);
        var fd = CurvatureReference.HessianByGradientDifferences(map, Tolerances.FiniteDifferenceStep);
        var h = new HessianOperator(map).ToDense();
        Assert.True(CurvatureReference.Relative(fd, h) <= Tolerances.GradientDifferences, $"{CurvatureReference.Relative(fd, h):e2}");
    }

    [Fact]
    public void Dense_Sum_And_Scaled_Operators_Compose()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var a = CurvatureReference.WithSpectrum([3, 1, -2, 0.5], 1);
        var b = tensor(SeededNormal.Vector(new Random(3), 12), dtype: float64).reshape(4, 3);
        using var aOp = new DenseOperator(a);
        using var bOp = new DenseOperator(b);
        Assert.True(aOp.IsSymmetric);
        Assert.False(bOp.IsSymmetric);
        var combo = 2.0 * aOp - aOp * 0.5 + (-aOp);
        Assert.True(combo.IsSymmetric);
        Assert.True(CurvatureReference.Relative(a * 0.5, combo.ToDense()) <= Tolerances.ExactAgreement);
        Assert.True(CurvatureReference.Relative(b.t(), bOp.Adjoint().ToDense()) <= Tolerances.ExactAgreement);
        Assert.True(CurvatureReference.Relative(b.t(), (3.0 * bOp).Adjoint().ToDense() / 3.0) <= Tolerances.ExactAgreement);
        Assert.Throws<ArgumentException>(() => aOp + bOp);
        Assert.Throws<ArgumentException>(() => aOp.Apply(zeros(3, dtype: float64)));
    }

    [Fact]
    public void Dense_Matrix_Over_The_Budget_Is_Refused_With_The_Alternatives_Named()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-5-1 tanh");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var op = new HessianOperator(new ResidualMap(model, c.Data));
        var error = Assert.Throws<MemoryBudgetExceededException>(() => op.ToDense(limits: new RunLimits(1000)));
        Assert.Contains("Lanczos", error.Message);
        Assert.Contains("Hutchinson", error.Message);
        Assert.Contains("StochasticLanczosQuadrature", error.Message);
        Assert.Equal(0, op.Applications);
        Assert.Throws<MemoryBudgetExceededException>(() => DenseSpectrum.Compute(op, limits: new RunLimits(1000)));
        Assert.Throws<MemoryBudgetExceededException>(() => Lanczos.Eigenpairs(op, new LanczosOptions(), new RunLimits(100)));
    }
}
