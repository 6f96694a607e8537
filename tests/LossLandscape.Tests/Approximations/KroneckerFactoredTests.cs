using LossLandscape.Approximations;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Approximations;

/// <summary>
/// Issue 23 §1: KFAC (KFC for convolutions) and EKFAC as operators, against dense float64 constructions from their
/// definitions (<see cref="ApproximationReference"/>); KFAC equal to the Gauss–Newton matrix where theory says so; the damped
/// inverse products and log-determinants against torch.linalg on the dense matrix.
/// </summary>
public sealed class KroneckerFactoredTests
{
    /// <summary>The layered cases of the table (MLPs and sequential networks; DAGs have no per-layer blocks).</summary>
    public static TheoryData<string> LayeredCases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases.Mlps().Concat(Cases.Sequentials()))
        {
            data.Add(c.Name);
        }
        return data;
    }

    /// <summary>The losses the tests run: the squared error, the mean squared error, and cross-entropy on one-hot targets.</summary>
    internal static (LossFunction Loss, Dataset Data) WithLoss(NetworkCase c, LossKind kind)
    {
        if (kind != LossKind.CrossEntropy)
        {
            return (kind == LossKind.Mse ? LossFunction.Mse : LossFunction.Squared(), c.Data);
        }
        var (_, y) = c.Data.Read(0, c.Data.Count);
        int l = c.Data.OutputDim;
        var classes = y.argmax(1).data<long>().ToArray();
        var targets = new double[c.Data.Count, l];
        for (int i = 0; i < classes.Length; i++)
        {
            targets[i, classes[i]] = 1.0;
        }
        return (LossFunction.CrossEntropy, c.Data.WithTargets(targets));
    }

    /// <summary>KFAC's dense matrix from the definitions: per Kronecker block B ⊗ A in the block's layout, the exact GGN block for the others.</summary>
    private static Tensor ReferenceKfac(NetworkModel model, Dataset data, LossFunction loss, IReadOnlyList<ParameterBlock> blocks, Tensor jacobian, Tensor ggn, Tensor hessians)
    {
        var factors = ApproximationReference.LayerInputsAndDeltas(model, data, jacobian, blocks);
        var kfac = zeros_like(ggn);
        for (int k = 0; k < blocks.Count; k++)
        {
            var b = blocks[k];
            var block = kfac.narrow(0, b.Offset, b.Count).narrow(1, b.Offset, b.Count);
            if (factors[k] is not { } f)
            {
                block.copy_(ggn.narrow(0, b.Offset, b.Count).narrow(1, b.Offset, b.Count));
                continue;
            }
            var (a, bb) = ApproximationReference.KfacFactors(f.Patches, f.Deltas, hessians, b);
            block.copy_(ApproximationReference.FromAugmented(kron(bb, a), b));
        }
        return kfac;
    }

    [Theory]
    [MemberData(nameof(LayeredCases))]
    public void Kfac_Equals_Its_Dense_Construction_From_Activations_And_Output_Factors(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        foreach (var kind in new[] { LossKind.Squared, LossKind.Mse, LossKind.CrossEntropy })
        {
            if (kind == LossKind.CrossEntropy && c.Data.OutputDim == 1)
            {
                continue; // one class: cross-entropy is 0 everywhere
            }
            using var scope = NewDisposeScope();
            var (loss, data) = WithLoss(c, kind);
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, data, loss, batchSize: 4);
            var blocks = ParameterBlocks.Of(model);
            var jacobian = ApproximationReference.Jacobian(map);
            var (outputs, targets) = ApproximationReference.OutputsAndTargets(model, data);
            var hessians = ApproximationReference.OutputHessians(loss, outputs, targets);
            var ggn = ApproximationReference.GaussNewton(jacobian, hessians);
            var expected = ReferenceKfac(model, data, loss, blocks, jacobian, ggn, hessians);

            using var kfac = KfacOperator.Create(map);
            var actual = kfac.ToDense();
            double error = ApproximationReference.Relative(expected, actual);
            Assert.True(error <= Tolerances.SecondOrderAgreement, $"{kind}: {error:e2}");
            // The input and output factors themselves, block by block, where the block is Kronecker.
            var factors = ApproximationReference.LayerInputsAndDeltas(model, data, jacobian, blocks);
            for (int k = 0; k < blocks.Count; k++)
            {
                if (factors[k] is { } f)
                {
                    var (a, b) = ApproximationReference.KfacFactors(f.Patches, f.Deltas, hessians, blocks[k]);
                    Assert.True(ApproximationReference.Relative(a, kfac.InputFactor(k)) <= Tolerances.SecondOrderAgreement, $"{kind} A of {blocks[k].Name}");
                    Assert.True(ApproximationReference.Relative(b, kfac.OutputFactor(k)) <= Tolerances.SecondOrderAgreement, $"{kind} B of {blocks[k].Name}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(LayeredCases))]
    public void Ekfac_Equals_The_Exact_Blocks_Diagonal_In_The_Kronecker_Eigenbasis(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data, batchSize: 5);
        var blocks = ParameterBlocks.Of(model);
        var jacobian = ApproximationReference.Jacobian(map);
        var (outputs, targets) = ApproximationReference.OutputsAndTargets(model, c.Data);
        var hessians = ApproximationReference.OutputHessians(map.LossFunction, outputs, targets);
        var ggn = ApproximationReference.GaussNewton(jacobian, hessians);
        var factors = ApproximationReference.LayerInputsAndDeltas(model, c.Data, jacobian, blocks);

        using var ekfac = EkfacOperator.Create(map);
        var expected = zeros_like(ggn);
        for (int k = 0; k < blocks.Count; k++)
        {
            var b = blocks[k];
            var exactBlock = ggn.narrow(0, b.Offset, b.Count).narrow(1, b.Offset, b.Count);
            var target = expected.narrow(0, b.Offset, b.Count).narrow(1, b.Offset, b.Count);
            if (factors[k] is not { } f)
            {
                target.copy_(exactBlock);
                continue;
            }
            // The operator's bases are orthonormal eigenbases of the reference factors (LAPACK's choice within a repeated eigenvalue).
            var (a, bb) = ApproximationReference.KfacFactors(f.Patches, f.Deltas, hessians, b);
            foreach (var (factor, basis) in new[] { (a, ekfac.InputBasis(k)), (bb, ekfac.OutputBasis(k)) })
            {
                var rotated = basis.t().mm(factor).mm(basis);
                double scale = Math.Max(factor.abs().max().item<double>(), 1e-300);
                Assert.True((rotated - diag(rotated.diagonal())).abs().max().item<double>() <= Tolerances.SecondOrderAgreement * scale, $"eigenbasis of {b.Name}");
                Assert.True((basis.t().mm(basis) - eye(basis.shape[0], dtype: float64)).abs().max().item<double>() <= Tolerances.ExactAgreement);
            }
            // s = diag(Qᵀ G_kk Q), Q = U_B ⊗ U_A, and the block Q diag(s) Qᵀ.
            var q = kron(ekfac.OutputBasis(k), ekfac.InputBasis(k));
            var s = q.t().mm(ApproximationReference.ToAugmented(ggn, b)).mm(q).diagonal();
            Assert.True(ApproximationReference.Relative(s, ekfac.Eigenvalues(k).reshape(-1)) <= Tolerances.SecondOrderAgreement, $"s of {b.Name}");
            target.copy_(ApproximationReference.FromAugmented(q.mm(diag(s)).mm(q.t()), b));
        }
        double error = ApproximationReference.Relative(expected, ekfac.ToDense());
        Assert.True(error <= Tolerances.SecondOrderAgreement, $"{error:e2}");
        // EKFAC minimises the Frobenius error in KFAC's eigenbasis: never further from the exact blocks than KFAC.
        using var kfac = KfacOperator.Create(map);
        var exactBlocks = ApproximationReference.BlockDiagonal(ggn, blocks);
        double kfacError = (kfac.ToDense() - exactBlocks).norm().item<double>();
        double ekfacError = (ekfac.ToDense() - exactBlocks).norm().item<double>();
        Assert.True(ekfacError <= kfacError * (1 + Tolerances.ExactAgreement) + (Tolerances.ExactAgreement * exactBlocks.norm().item<double>()), $"EKFAC {ekfacError:e3} > KFAC {kfacError:e3}");
    }

    [Theory]
    [InlineData(1, LossKind.Squared)]
    [InlineData(3, LossKind.Squared)]
    [InlineData(3, LossKind.Mse)]
    public void Kfac_Of_The_Linear_Model_Is_The_Gauss_Newton_Matrix(int outputs, LossKind kind)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = Cases.Data(9, 4, outputs, 3);
        var linear = new Mlp(4, [], outputs); // f(x) = Wx + b, what init --hidden none makes
        using var model = new NetworkModel(linear, linear.InitialParameters(5));
        using var map = new ResidualMap(model, data, kind == LossKind.Mse ? LossFunction.Mse : LossFunction.Squared(), batchSize: 4);
        var ggn = new GaussNewtonOperator(map).ToDense();
        using var kfac = KfacOperator.Create(map);
        using var ekfac = EkfacOperator.Create(map);
        Assert.True(ApproximationReference.Relative(ggn, kfac.ToDense()) <= Tolerances.ExactAgreement, $"KFAC {ApproximationReference.Relative(ggn, kfac.ToDense()):e2}");
        Assert.True(ApproximationReference.Relative(ggn, ekfac.ToDense()) <= Tolerances.ExactAgreement, $"EKFAC {ApproximationReference.Relative(ggn, ekfac.ToDense()):e2}");
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled", LossKind.Squared)]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled", LossKind.Mse)]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled", LossKind.CrossEntropy)]
    [InlineData("mlp 3-5-1 softplus", LossKind.Squared)]
    public void Kfac_Of_One_Row_Is_The_Gauss_Newton_Matrixs_Diagonal_Blocks(string name, LossKind kind)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        var (loss, all) = WithLoss(c, kind);
        var data = all.Take(1);
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, data, loss);
        var blocks = ParameterBlocks.Of(model);
        var ggn = ApproximationReference.BlockDiagonal(new GaussNewtonOperator(map).ToDense(), blocks);
        using var kfac = KfacOperator.Create(map);
        using var ekfac = EkfacOperator.Create(map);
        Assert.True(ApproximationReference.Relative(ggn, kfac.ToDense()) <= Tolerances.ExactAgreement, $"KFAC {ApproximationReference.Relative(ggn, kfac.ToDense()):e2}");
        Assert.True(ApproximationReference.Relative(ggn, ekfac.ToDense()) <= Tolerances.ExactAgreement, $"EKFAC {ApproximationReference.Relative(ggn, ekfac.ToDense()):e2}");
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled")]
    [InlineData("seq 1x5x5 conv-relu-maxpool-bn-linear ℓ=2")]
    [InlineData("seq 1x6x6 conv/s2-smoolu-bn-conv-softplus-maxpool-linear ℓ=2")]
    public void Damped_Inverse_And_Log_Determinant_Equal_Dense_Ones(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        using var kfac = KfacOperator.Create(map);
        using var ekfac = EkfacOperator.Create(map);
        using var diagonal = GaussNewtonDiagonal.Compute(map);
        using var blockHessian = BlockDiagonalOperator.Create(map, CurvatureKind.Hessian);
        using var blockGgn = BlockDiagonalOperator.Create(map, CurvatureKind.GaussNewton);
        var v = tensor(SeededNormal.Vector(new Random(4), model.ParameterCount * 3), dtype: float64).reshape(model.ParameterCount, 3);
        foreach (var (op, what) in new (LinearOperator, string)[] { (kfac, "kfac"), (ekfac, "ekfac"), (diagonal, "diag"), (blockHessian, "block hessian"), (blockGgn, "block ggn") })
        {
            var dense = op.ToDense();
            var eigenvalues = linalg.eigvalsh((dense + dense.t()) / 2);
            // λ = |λ|max/100 + 2·max(0, −λmin): A + λI positive definite with condition number ≤ ~200.
            double top = eigenvalues.abs().max().item<double>();
            double damping = (top / 100) + (2 * Math.Max(0, -eigenvalues.min().item<double>()));
            var shifted = dense + (eye(dense.shape[0], dtype: float64) * damping);
            var expected = linalg.solve(shifted, v);
            var actual = ((IDampedInverse)op).DampedInverseTimes(v, damping);
            Assert.True(ApproximationReference.Relative(expected, actual) <= Tolerances.DampedInverse, $"{what} (A + λI)⁻¹v: {ApproximationReference.Relative(expected, actual):e2}");
            var single = ((IDampedInverse)op).DampedInverseTimes(v.select(1, 0), damping);
            Assert.True(ApproximationReference.Relative(expected.select(1, 0), single) <= Tolerances.DampedInverse, what);
            var (sign, logdet) = linalg.slogdet(shifted);
            Assert.Equal(1.0, sign.item<double>());
            double ours = ((IDampedInverse)op).DampedLogDeterminant(damping);
            Assert.True(Math.Abs(ours - logdet.item<double>()) <= Tolerances.DampedInverse * Math.Max(1, Math.Abs(logdet.item<double>())), $"{what} log det: {ours} vs {logdet.item<double>()}");
        }
        // Too little damping for an indefinite block is refused in one line, naming the λ that would do.
        var hessianEigenvalues = linalg.eigvalsh(blockHessian.ToDense());
        if (hessianEigenvalues.min().item<double>() < 0)
        {
            var refusal = Assert.Throws<LandscapeInputException>(() => blockHessian.DampedLogDeterminant(0));
            Assert.Contains("not positive definite", refusal.Message);
            Assert.DoesNotContain('\n', refusal.Message);
        }
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled")]
    [InlineData("seq 1x6x6 conv/s2-smoolu-bn-conv-softplus-maxpool-linear ℓ=2")]
    public void Factors_Do_Not_Depend_On_How_The_Rows_Are_Batched(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var blocks = ParameterBlocks.Of(model);
        // A budget whose quarter holds two rows' factors (and the factors themselves): batches of 2 rows.
        long perRow = sizeof(double) * LayerFactors.ValuesPerRow(map, blocks, c.Data.OutputDim);
        var small = new RunLimits(MemoryBudgetBytes: Math.Max(2 * perRow * ResidualMap.BudgetShare, KfacOperator.RequiredBytes(blocks)) + ResidualMap.BudgetShare);
        Assert.Equal(2, LayerFactors.RowsPerBatch(map, blocks, c.Data.OutputDim, small));
        foreach (var options in new[] { new KfacOptions(), new KfacOptions(OutputCurvature.MonteCarlo, MonteCarloSamples: 2, Seed: 5) })
        {
            using var whole = KfacOperator.Create(map, options);
            using var batched = KfacOperator.Create(map, options, small);
            Assert.True(ApproximationReference.Relative(whole.ToDense(), batched.ToDense()) <= Tolerances.ExactAgreement, $"KFAC {options.Curvature}");
            using var wholeE = EkfacOperator.Create(map, options);
            using var batchedE = EkfacOperator.Create(map, options, small);
            Assert.True(ApproximationReference.Relative(wholeE.ToDense(), batchedE.ToDense()) <= Tolerances.SecondOrderAgreement, $"EKFAC {options.Curvature}");
        }
    }

    [Fact]
    public void Monte_Carlo_Kfac_Is_Seeded_And_Averages_To_The_Exact_Factors()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-4-3-3 tanh/smoolu scaled");
        foreach (var kind in new[] { LossKind.Squared, LossKind.CrossEntropy })
        {
            using var scope = NewDisposeScope();
            var (loss, data) = WithLoss(c, kind);
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, data, loss);
            using var exact = KfacOperator.Create(map);
            using var once = KfacOperator.Create(map, new KfacOptions(OutputCurvature.MonteCarlo, Seed: 3));
            using var again = KfacOperator.Create(map, new KfacOptions(OutputCurvature.MonteCarlo, Seed: 3));
            using var many = KfacOperator.Create(map, new KfacOptions(OutputCurvature.MonteCarlo, MonteCarloSamples: 20000, Seed: 4));
            Assert.Equal(0.0, ApproximationReference.Relative(once.ToDense(), again.ToDense()));
            // The input factors do not depend on the draws; the output factors average to the exact ones: with M = 20000 draws a
            // relative error of order 1/√M ≈ 0.007, and 5 % is far outside that.
            for (int k = 0; k < exact.Blocks.Count; k++)
            {
                Assert.True(ApproximationReference.Relative(exact.InputFactor(k), once.InputFactor(k)) <= Tolerances.ExactAgreement);
                double error = ApproximationReference.Relative(exact.OutputFactor(k), many.OutputFactor(k));
                Assert.True(error <= Tolerances.MonteCarloFisher, $"{kind} B of layer {k}: {error:e2}");
            }
        }
        using var cubic = new NetworkModel(c.Network, c.Parameters);
        using var cubicMap = new ResidualMap(cubic, c.Data, LossFunction.Squared(3.0));
        var refusal = Assert.Throws<LandscapeInputException>(() => KfacOperator.Create(cubicMap, new KfacOptions(OutputCurvature.MonteCarlo)));
        Assert.Contains("likelihood", refusal.Message);
    }

    [Fact]
    public void Blocks_Are_The_Layers_Weights_And_Bias_And_A_Dags_Levels()
    {
        TorchRuntime.EnsureInitialized();
        var mlp = new Mlp(3, [new HiddenLayer(5, ActivationRegistry.Default)], 2);
        var blocks = ParameterBlocks.Of(mlp);
        Assert.Equal(2, blocks.Count);
        Assert.Equal((0, 20, 5, 3), (blocks[0].Offset, blocks[0].Count, blocks[0].Out, blocks[0].FanIn));
        Assert.Equal((20, 12, 2, 5), (blocks[1].Offset, blocks[1].Count, blocks[1].Out, blocks[1].FanIn));
        Assert.Equal(mlp.ParameterCount, blocks.Sum(b => b.Count));
        foreach (var c in Cases.Sequentials())
        {
            var seqBlocks = ParameterBlocks.Of(c.Network);
            Assert.Equal(c.Network.ParameterCount, seqBlocks.Sum(b => b.Count));
            Assert.Contains(seqBlocks, b => b.Kind == LayerKind.Conv2d && b.Positions > 1);
            Assert.Contains(seqBlocks, b => b.Kind == LayerKind.BatchNorm);
        }
        // The shared DAG (Cases.SharedDag): level 1 holds vertices 2, 3, 4 (edge labels 0, 1, 2, 5 and biases 3, 4), level 2
        // vertex 5 (labels 6, 7, 8), level 3 the outputs; labels repeat within a level only.
        foreach (var dag in Cases.Dags())
        {
            using var model = new NetworkModel(dag.Network, dag.Parameters);
            var levels = ParameterBlocks.Of(model);
            Assert.Equal(3, levels.Count);
            Assert.All(levels, b => Assert.Equal(LayerKind.Level, b.Kind));
            Assert.Equal([0, 1, 2, 3, 4, 5], levels[0].Indices);
            Assert.Equal([6, 7, 8], levels[1].Indices);
            var all = levels.SelectMany(b => b.Indices).ToArray();
            Assert.Equal(all.Length, all.Distinct().Count());
            using var map = new ResidualMap(model, dag.Data);
            var kfacRefusal = Assert.Throws<LandscapeInputException>(() => KfacOperator.Create(map));
            Assert.Contains("linear and conv2d layers", kfacRefusal.Message);
        }
        // A label shared by two levels: no level owns it, and the DAG has no blocks.
        var shared = new DagNetwork(1, [new DagVertex(DagVertexKind.Hidden, 0, ActivationRegistry.Default), new DagVertex(DagVertexKind.Output, 2)], [new DagEdge(0, 1, 1), new DagEdge(1, 2, 1)], 3);
        var refusal = Assert.Throws<LandscapeInputException>(() => ParameterBlocks.Of(shared));
        Assert.Contains("shared by levels 1 and 2", refusal.Message);
    }
}
