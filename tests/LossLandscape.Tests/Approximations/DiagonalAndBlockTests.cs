using LossLandscape.Approximations;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Approximations;

/// <summary>
/// Issue 23 §1: the exact diagonal of the Gauss–Newton matrix, Hutchinson's diagonal of the Hessian with its standard errors,
/// and the exact per-layer block diagonals of the Hessian and the Gauss–Newton matrix (a DAG's blocks being its levels), against dense references.
/// </summary>
public sealed class DiagonalAndBlockTests
{
    public static TheoryData<string> AllCases() => Cases.Names();

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Exact_Gauss_Newton_Diagonal_Is_The_Diagonal_Of_The_Dense_Gauss_Newton_Matrix(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        foreach (var kind in new[] { LossKind.Squared, LossKind.Mse, LossKind.CrossEntropy })
        {
            if (kind == LossKind.CrossEntropy && c.Data.OutputDim == 1)
            {
                continue;
            }
            using var scope = NewDisposeScope();
            var (loss, data) = KroneckerFactoredTests.WithLoss(c, kind);
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, data, loss, batchSize: 3);
            var jacobian = ApproximationReference.Jacobian(map);
            var (outputs, targets) = ApproximationReference.OutputsAndTargets(model, data);
            var ggn = ApproximationReference.GaussNewton(jacobian, ApproximationReference.OutputHessians(loss, outputs, targets));
            using var diagonal = GaussNewtonDiagonal.Compute(map, new RunLimits(MemoryBudgetBytes: 200_000)); // a small budget: several batches
            double error = ApproximationReference.Relative(ggn.diagonal(), diagonal.Diagonal);
            Assert.True(error <= Tolerances.SecondOrderAgreement, $"{kind}: {error:e2}");
            // The operator is that diagonal.
            Assert.True(ApproximationReference.Relative(diag(ggn.diagonal()), diagonal.ToDense()) <= Tolerances.SecondOrderAgreement);
        }
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled")]
    [InlineData("seq 2x4x4 conv-tanh-avgpool-bn1d-linear ℓ=2")]
    public void Hutchinson_Diagonal_Is_Within_Four_Standard_Errors_Of_The_Exact_One(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var hessian = new HessianOperator(map);
        var exact = hessian.ToDense();
        var estimate = HutchinsonDiagonal.Estimate(hessian, new DiagonalOptions(Probes: 400, BlockSize: 50, Seed: 7));
        Assert.Equal(400, estimate.Probes);
        Assert.Equal(400, estimate.Applications);
        double scale = exact.abs().max().item<double>();
        var truth = exact.diagonal().data<double>().ToArray();
        for (int i = 0; i < truth.Length; i++)
        {
            // Var[(z ⊙ Hz)ᵢ] = Σ_{j≠i} H²ᵢⱼ: the standard error is that over √N, and a row with no off-diagonal entry is exact.
            double bound = (Tolerances.StandardErrors * estimate.StandardErrors[i]) + (Tolerances.SecondOrderAgreement * scale);
            Assert.True(Math.Abs(estimate.Diagonal[i] - truth[i]) <= bound, $"entry {i}: {estimate.Diagonal[i]} vs {truth[i]} ± {estimate.StandardErrors[i]}");
            double offDiagonal = Math.Sqrt(exact[i].pow(2).sum().item<double>() - (truth[i] * truth[i]));
            double theory = offDiagonal / Math.Sqrt(400);
            Assert.InRange(estimate.StandardErrors[i], (Tolerances.StandardErrorRatioLow * theory) - 1e-300, (Tolerances.StandardErrorRatioHigh * theory) + (Tolerances.SecondOrderAgreement * scale));
        }
        using var op = estimate.ToOperator();
        Assert.Equal(estimate.Diagonal, op.Diagonal.data<double>().ToArray());
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Block_Diagonals_Are_The_Dense_Hessian_And_Gauss_Newton_With_Off_Block_Entries_Zeroed(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data, batchSize: 4);
        var blocks = ParameterBlocks.Of(model);
        var hessian = Curvature.CurvatureReference.Hessian(c.Network, c.Parameters, c.Data);
        var jacobian = ApproximationReference.Jacobian(map);
        var (outputs, targets) = ApproximationReference.OutputsAndTargets(model, c.Data);
        var ggn = ApproximationReference.GaussNewton(jacobian, ApproximationReference.OutputHessians(map.LossFunction, outputs, targets));
        foreach (var (kind, dense) in new[] { (CurvatureKind.Hessian, hessian), (CurvatureKind.GaussNewton, ggn) })
        {
            using var op = BlockDiagonalOperator.Create(map, kind);
            var expected = ApproximationReference.BlockDiagonal(dense, blocks);
            var actual = op.ToDense(blockSize: 5);
            Assert.True(ApproximationReference.Relative(expected, actual) <= Tolerances.SecondOrderAgreement, $"{kind}: {ApproximationReference.Relative(expected, actual):e2}");
            // One application costs one product of the exact operator per layer.
            Assert.Equal(blocks.Count * model.ParameterCount, op.Exact.Applications);
            var formed = op.DenseBlocks();
            for (int k = 0; k < blocks.Count; k++)
            {
                var index = tensor(blocks[k].Indices.Select(i => (long)i).ToArray());
                Assert.True(ApproximationReference.Relative(dense.index_select(0, index).index_select(1, index), formed[k]) <= Tolerances.SecondOrderAgreement);
            }
        }
    }
}
