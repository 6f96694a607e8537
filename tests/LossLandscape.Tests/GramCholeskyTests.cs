using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class GramCholeskyTests
{
    private static (NetworkModel Model, ResidualMap Map) Network(Dataset data, int width, int seed)
    {
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(width, ActivationRegistry.Get("tanh")), new HiddenLayer(width, ActivationRegistry.Get("tanh"))], data.OutputDim);
        var model = new NetworkModel(mlp, mlp.InitialParameters(seed));
        return (model, new ResidualMap(model, data));
    }

    [Fact]
    public void The_Proven_Lower_Bound_Is_Below_The_Smallest_Singular_Value_Of_The_Dense_J_And_Close_To_It()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(30, 4, 2, seed: 5); // ℓd = 60 < n
        var (model, map) = Network(data, 24, 3);
        using (model)
        using (map)
        {
            using var gram = GramMatrix.Compute(map);
            var decision = GramCholesky.Decide(gram, GramCholesky.FormingLength(map));
            Assert.NotNull(decision);
            var sigma = linalg.svdvals(map.Jacobian()).data<double>().ToArray(); // the dense reference
            double sigmaMin = sigma[^1];
            Assert.Equal(map.Constraints, decision.Rank);
            Assert.True(decision.Decided);
            Assert.Equal(GramCholesky.Basis, decision.Basis);
            double proven = decision.ProvenSigmaMin!.Value;
            // A proof: below the true σmin; and aimed at θmin/2 with θmin ≈ λmin (Lanczos converges on 60 × 60), so σmin/√2 ≈ it.
            Assert.True(proven <= sigmaMin, $"proved σmin ≥ {proven:R} but σmin = {sigmaMin:R}");
            Assert.True(proven >= sigmaMin / Math.Sqrt(2) * (1 - Tolerances.GramCholeskyAim), $"proved only {proven:R} of σmin = {sigmaMin:R}");
            Assert.Equal(proven, decision.SigmaMin);
            Assert.True(decision.SigmaMax >= sigma[0] * (1 - Tolerances.GramCholeskyAim), $"σmax estimate {decision.SigmaMax:R} vs {sigma[0]:R}");
        }
    }

    [Fact]
    public void The_Test_Fails_Above_The_Smallest_Eigenvalue_And_Passes_Below_It()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(30, 4, 2, seed: 6);
        var (model, map) = Network(data, 24, 4);
        using (model)
        using (map)
        {
            using var gram = GramMatrix.Compute(map);
            double lambdaMin = linalg.eigvalsh(gram).data<double>().Min();
            int w = GramCholesky.FormingLength(map);
            Assert.True(GramCholesky.ProvesLowerBound(gram, 0.9 * lambdaMin, w));
            Assert.False(GramCholesky.ProvesLowerBound(gram, 1.1 * lambdaMin, w));
            Assert.False(GramCholesky.ProvesLowerBound(gram, 0, w));
        }
    }

    [Fact]
    public void A_Repeated_Data_Point_Makes_J_Rank_Deficient_And_Nothing_Is_Proved()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var baseData = SyntheticData.Gaussian(20, 4, 1, seed: 7);
        var rows = Enumerable.Range(0, 21).Select(i => i == 20 ? 0 : i).ToArray();
        var inputs = baseData.InputsTensor().index_select(0, tensor(rows.Select(i => (long)i).ToArray()));
        var targets = baseData.TargetsTensor().index_select(0, tensor(rows.Select(i => (long)i).ToArray()));
        var data = new Dataset(inputs, targets);
        var (model, map) = Network(data, 16, 5);
        using (model)
        using (map)
        {
            using var gram = GramMatrix.Compute(map);
            Assert.Null(GramCholesky.Decide(gram, GramCholesky.FormingLength(map)));
        }
    }

    [Fact]
    public void The_Cholesky_Levenberg_Marquardt_Step_Equals_The_Spectral_One()
    {
        // Same point, same H, same μ sequence: the Cholesky route (K + μI)w = H, s = −Jᵀw must take the same step as the
        // eigendecomposition route −Σ σᵢ/(σᵢ² + μ) vᵢ wᵢᵀH (full row rank, so μ = 0 is −J⁺H on both).
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(25, 3, 2, seed: 8);
        var (model, map) = Network(data, 20, 6);
        using (model)
        using (map)
        {
            var p0 = ParameterVector.Get(model).clone();
            var h = map.Residuals();
            var spectral = new LevenbergMarquardt(LevenbergMarquardt.DefaultInitialDamping, LevenbergMarquardt.DefaultMaxDampingIncreases);
            using (var factors = JacobianFactorization.Factor(map, JacobianRoute.Gram))
            {
                Assert.True(spectral.Step(map, factors, h).Accepted);
            }
            var pSpectral = ParameterVector.Get(model).clone();
            ParameterVector.Set(model, p0);
            var cholesky = new LevenbergMarquardt(LevenbergMarquardt.DefaultInitialDamping, LevenbergMarquardt.DefaultMaxDampingIncreases);
            using (var gram = GramMatrix.Compute(map))
            {
                Assert.True(cholesky.Step(map, gram, h).Accepted);
            }
            var pCholesky = ParameterVector.Get(model);
            double step = (pSpectral - p0).norm().item<double>();
            double difference = (pCholesky - pSpectral).norm().item<double>();
            Assert.True(step > 0);
            Assert.True(difference <= Tolerances.GramCholeskyStep * step, $"|Δ| = {difference:e2} of a step {step:e2}");
        }
    }

    [Fact]
    public void Above_The_Eigen_Route_Limit_Training_And_The_Certificate_Take_The_Cholesky_Route()
    {
        // ℓd = 3050 > GramCholesky.EigenRouteLimit and ℓd·n above the SVD cap, so J is never formed and no ℓd × ℓd
        // eigendecomposition runs: Gauss–Newton solves by Cholesky and the certificate proves full rank by the Cholesky test.
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(GramCholesky.EigenRouteLimit + 50, 20, 1, seed: 9);
        var (model, map) = Network(data, 105, 7);
        using (model)
        using (map)
        {
            Assert.True((long)map.Constraints * map.ParameterCount > JacobianFactorization.SvdRouteCapBytes / sizeof(double) / 4);
            double before = map.Loss();
            using var gaussNewton = new Training.GaussNewton();
            var run = Training.Trainer.Run(map, gaussNewton, new Training.TrainingOptions(1));
            Assert.Equal(JacobianRoute.Gram, gaussNewton.Route);
            Assert.Contains("Cholesky", gaussNewton.Describe(), StringComparison.Ordinal);
            Assert.True(run.BestLoss < before, $"L {before:e3} → {run.BestLoss:e3}");

            var certificate = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram));
            var j = certificate.Jacobian;
            Assert.True(j.Basis == GramCholesky.Basis, $"{j.Basis}: rank {j.Rank}, σ {j.SigmaMax:e3} … {j.SigmaMin:e3}, tol {j.Tolerance:e3}");
            Assert.True(certificate.Jacobian.Decided);
            Assert.Equal(map.Constraints, certificate.Jacobian.Rank);
            Assert.True(certificate.Jacobian.SigmaMin > 0);
        }
    }

    [Fact]
    public void The_Blocked_Symmetric_Gram_Matrix_Equals_J_Jt_Across_Several_Blocks()
    {
        // ℓd = 2 · 10 · 128 + 10 = 2570 > BlockRows with ℓ = 10: off-diagonal blocks, the mirror and the row-to-sample gather.
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(257, 3, 10, seed: 10);
        Assert.True(data.Count * data.OutputDim > GramMatrix.BlockRows);
        var (model, map) = Network(data, 6, 8);
        using (model)
        using (map)
        {
            var j = map.Jacobian();
            var expected = j.matmul(j.t());
            var k = GramMatrix.Compute(map);
            double scale = expected.abs().max().item<double>();
            Assert.True((k - expected).abs().max().item<double>() <= Tolerances.ExactAgreement * scale);
            Assert.Equal(0.0, (k - k.t()).abs().max().item<double>()); // exactly symmetric: the lower blocks are copies
        }
    }
}
