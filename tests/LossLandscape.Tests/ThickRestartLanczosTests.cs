using LossLandscape.Operators;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Tests.Curvature;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class ThickRestartLanczosTests
{
    private const int K = 20;

    /// <summary>
    /// n = 600 eigenvalues shaped like a trained Hessian: 5 negative, a cluster of 200 in [−0.01, 0.02] (spacing 1.5e−4),
    /// a bulk of 390 in [0.1, 5] and 5 outliers up to 100, so ‖A‖ = 100 and the smallest 20 are 5 negatives and 15 of the cluster.
    /// </summary>
    private static double[] ClusteredSpectrum()
    {
        double[] negative = [-0.3, -0.2, -0.12, -0.08, -0.05];
        var cluster = Enumerable.Range(0, 200).Select(i => -0.01 + (0.03 * i / 199.0));
        var bulk = Enumerable.Range(0, 390).Select(i => 0.1 + (4.9 * i / 389.0));
        return [.. negative, .. cluster, .. bulk, 20, 40, 60, 80, 100];
    }

    [Theory]
    [InlineData(SpectrumEnd.Smallest)]
    [InlineData(SpectrumEnd.Largest)]
    public void Thick_Restart_Converges_The_20_Extreme_Eigenvalues_Within_The_Basis_And_Budget(SpectrumEnd which)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var spectrum = ClusteredSpectrum();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 11));
        const long budget = 4000;
        // The smallest default basis (100 vectors), so that the run has to restart; the default for n = 600 would hold all of it.
        var result = ThickRestartLanczos.Eigenpairs(op, new ThickRestartOptions(K, which, BasisSize: ThickRestartLanczos.MinimumDefaultBasis, MaxIterations: budget, Tolerance: Tolerances.ThickRestartKnownSpectrum));

        Assert.Equal(SolverStatus.Converged, result.Status);
        Assert.All(result.Converged, Assert.True);
        Assert.True(result.Restarts > 0, "the test must exercise restarts");
        Assert.True(result.LargestBasis <= result.BasisSize, $"basis {result.LargestBasis} > m = {result.BasisSize}");
        Assert.Equal(ThickRestartLanczos.MinimumDefaultBasis, result.BasisSize);
        Assert.True(result.Applications <= budget, $"{result.Applications} products > budget {budget}");
        Assert.Equal(result.Steps + K, result.Applications);
        // The stated residual rule, explicitly: ‖Av − θv‖ ≤ tol·‖A‖ (‖A‖ estimated by max|θ| = 100 here).
        var eigh = linalg.eigvalsh(op.Matrix).data<double>().ToArray();
        double norm = eigh.Max(Math.Abs);
        Assert.Equal(norm, result.NormEstimate, norm * Tolerances.ThickRestartAgreement);
        Assert.All(result.ResidualNorms, r => Assert.True(r <= Tolerances.ThickRestartKnownSpectrum * result.NormEstimate, $"{r:e2}"));
        var expected = which == SpectrumEnd.Smallest ? eigh.OrderBy(x => x).Take(K).ToArray() : eigh.OrderByDescending(x => x).Take(K).ToArray();
        for (int i = 0; i < K; i++)
        {
            Assert.True(Math.Abs(result.Eigenvalues[i] - expected[i]) <= Tolerances.ThickRestartAgreement * norm,
                $"θ_{i} = {result.Eigenvalues[i]:R}, eigh {expected[i]:R}");
        }
        // The vectors are orthonormal Ritz vectors.
        var v = result.Eigenvectors;
        Assert.True((v.t().mm(v) - eye(K, dtype: float64)).abs().max().item<double>() <= Tolerances.ThickRestartAgreement);
    }

    [Fact]
    public void The_Default_Basis_Is_What_Half_The_Budget_Holds_Between_The_Floor_And_The_Cap()
    {
        // n = 600: the whole space fits; n = 17,098 (the largest trained-spectra network): the cap of 1500;
        // n = 9.2 million: half of 2 GiB holds 13 vectors, below the floor max(100, 4k), so the floor (and the run then refuses
        // if even that does not fit).
        Assert.Equal(600, ThickRestartLanczos.DefaultBasisSize(K, 600));
        Assert.Equal(ThickRestartLanczos.DefaultBasisCap, ThickRestartLanczos.DefaultBasisSize(K, 17_098));
        Assert.Equal(ThickRestartLanczos.MinimumDefaultBasis, ThickRestartLanczos.DefaultBasisSize(K, 9_200_000));
        Assert.Equal(4 * 40, ThickRestartLanczos.DefaultBasisSize(40, 9_200_000));
        // 200,000 parameters: (2 GiB / 2) / (8 · 200,000) − 1 = 670 vectors.
        Assert.Equal((int)((MemoryBudget.DefaultBytes / 2 / (8L * 200_000)) - 1), ThickRestartLanczos.DefaultBasisSize(K, 200_000));
    }

    [Fact]
    public void With_The_Default_Basis_The_Run_Stops_At_An_Intermediate_Test_Before_The_Basis_Fills()
    {
        // n = 600, default basis 600: the 20 largest (well separated outliers and bulk top) converge long before 600 steps, and the
        // test every max(50, m/10) steps stops the run there instead of at the first fill.
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(ClusteredSpectrum(), 11));
        var result = ThickRestartLanczos.Eigenpairs(op, new ThickRestartOptions(K, SpectrumEnd.Largest, Tolerance: Tolerances.ThickRestartKnownSpectrum));
        Assert.Equal(SolverStatus.Converged, result.Status);
        Assert.Equal(600, result.BasisSize);
        Assert.Equal(0, result.Restarts);
        Assert.True(result.Steps < result.BasisSize, $"{result.Steps} steps: the basis filled");
        Assert.Equal(0, result.Steps % 60);
    }

    [Fact]
    public void Plain_Lanczos_With_The_Same_Basis_Size_Does_Not_Converge_The_Clustered_Smallest()
    {
        // The comparison that motivates the method (issue 11 §3): plain Lanczos with the same memory, a basis of 100 vectors
        // (100 steps), leaves values of the cluster unconverged, where thick restart (above) converges all 20 in about 1700
        // products with that basis.
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(ClusteredSpectrum(), 11));
        var plain = Lanczos.Eigenpairs(op, new LanczosOptions(K, SpectrumEnd.Smallest, MaxIterations: ThickRestartLanczos.MinimumDefaultBasis, Tolerance: Tolerances.ThickRestartKnownSpectrum, VerifyResiduals: true));
        Assert.NotEqual(SolverStatus.Converged, plain.Status);
        Assert.Contains(false, plain.Converged);
    }

    [Fact]
    public void An_Impossible_Budget_Returns_Values_Marked_Not_Converged()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(ClusteredSpectrum(), 5));
        var result = ThickRestartLanczos.Eigenpairs(op, new ThickRestartOptions(K, SpectrumEnd.Smallest,
            MaxIterations: Tolerances.ThickRestartImpossibleBudget, Tolerance: Tolerances.ThickRestartKnownSpectrum));

        Assert.Equal(SolverStatus.StoppedWithoutConvergence, result.Status);
        Assert.True(result.Applications <= Tolerances.ThickRestartImpossibleBudget);
        Assert.Equal(Tolerances.ThickRestartImpossibleBudget - K, result.Steps);
        // Ten steps give ten Ritz values: fewer than asked, and every one returned says whether its residual passed.
        Assert.Equal(result.Steps, result.Eigenvalues.Count);
        Assert.Contains(false, result.Converged);
        for (int i = 0; i < result.Eigenvalues.Count; i++)
        {
            bool passes = result.ResidualNorms[i] <= Tolerances.ThickRestartKnownSpectrum * result.NormEstimate;
            Assert.Equal(passes, result.Converged[i]);
        }
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 smoolu/smoolu scaled")]
    [InlineData("dag shared softplus ℓ=3")]
    public void Thick_Restart_On_A_Network_Hessian_Matches_The_Dense_Hessian(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var op = new HessianOperator(new ResidualMap(model, c.Data, batchSize: 3));
        var dense = DenseSpectrum.Compute(op);
        double top = dense.Eigenvalues.Max(Math.Abs);
        const int k = 3, basis = 8; // a basis far smaller than n forces restarts on these small networks.
        foreach (var which in new[] { SpectrumEnd.Smallest, SpectrumEnd.Largest, SpectrumEnd.LargestMagnitude })
        {
            var result = ThickRestartLanczos.Eigenpairs(op, new ThickRestartOptions(k, which, BasisSize: basis, MaxIterations: 2000, Tolerance: Tolerances.LanczosNetwork));
            Assert.Equal(SolverStatus.Converged, result.Status);
            Assert.True(result.LargestBasis <= basis);
            Assert.True(result.Restarts > 0, $"{which}: no restart");
            var expected = dense.Select(which, k);
            for (int i = 0; i < k; i++)
            {
                Assert.True(Math.Abs(result.Eigenvalues[i] - expected[i]) <= Tolerances.LanczosNetwork * 10 * top,
                    $"{which} {i}: {result.Eigenvalues[i]:R} vs dense {expected[i]:R}");
            }
        }
    }

    [Fact]
    public void Spectrum_Smallest_Off_M_Runs_Thick_Restart_And_Matches_Dense()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-4-3-3 smoolu/smoolu scaled");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var thick = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, K: 3, Which: SpectrumEnd.Smallest, Tolerance: Tolerances.LanczosNetwork));
        var dense = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Dense, K: 3, Which: SpectrumEnd.Smallest));
        Assert.Contains("thick-restart Lanczos", thick.Note, StringComparison.Ordinal);
        Assert.Equal(SolverStatus.Converged, thick.Status);
        Assert.All(thick.Converged, Assert.True);
        double top = dense.AllEigenvalues!.Max(Math.Abs);
        for (int i = 0; i < 3; i++)
        {
            Assert.True(Math.Abs(thick.Eigenvalues[i] - dense.Eigenvalues[i]) <= Tolerances.LanczosNetwork * 10 * top, $"{thick.Eigenvalues[i]:R} vs {dense.Eigenvalues[i]:R}");
        }
    }
}
