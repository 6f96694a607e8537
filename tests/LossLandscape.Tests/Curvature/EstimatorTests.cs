using LossLandscape.Operators;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Curvature;

public class CurvatureEstimatorTests
{
    /// <summary>A spectrum with a gap at the top, negative curvature at the bottom and a bulk in between, n = 120.</summary>
    private static double[] KnownSpectrum()
    {
        var bulk = Enumerable.Range(0, 110).Select(i => -0.5 + 1.5 * i / 109.0);
        return [10, 8, 7, 6.5, 6, .. bulk, -3, -2.5, -2, -1.8, -1.6];
    }

    [Theory]
    [InlineData(SpectrumEnd.Largest)]
    [InlineData(SpectrumEnd.Smallest)]
    [InlineData(SpectrumEnd.LargestMagnitude)]
    public void Lanczos_Finds_The_Known_Extreme_Eigenvalues_In_The_Requested_Order(SpectrumEnd which)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var spectrum = KnownSpectrum();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 7));
        var result = Lanczos.Eigenpairs(op, new LanczosOptions(K: 4, Which: which, Tolerance: Tolerances.LanczosKnownSpectrum, VerifyResiduals: true));
        var expected = which switch
        {
            SpectrumEnd.Largest => spectrum.OrderByDescending(x => x).Take(4),
            SpectrumEnd.Smallest => spectrum.OrderBy(x => x).Take(4),
            _ => spectrum.OrderByDescending(Math.Abs).Take(4),
        };
        Assert.Equal(SolverStatus.Converged, result.Status);
        Assert.Equal(expected, result.Eigenvalues, (x, y) => Math.Abs(x - y) <= Tolerances.RitzValue * 10);
        Assert.All(result.ResidualNorms, r => Assert.True(r <= Tolerances.LanczosKnownSpectrum * 10 * Tolerances.ResidualRecomputation, $"{r:e2}"));
        // AV = VΛ and VᵀV = I.
        var v = result.Eigenvectors;
        var lambda = tensor(result.Eigenvalues.ToArray());
        Assert.True((op.ApplyMatrix(v) - v * lambda).abs().max().item<double>() <= Tolerances.EigenpairResidual);
        Assert.True((v.t().mm(v) - eye(4)).abs().max().item<double>() <= Tolerances.ExactAgreement * 100);
        Assert.Equal(result.Iterations + 4, result.Applications);
        Assert.True(result.Iterations < spectrum.Length, $"{result.Iterations} steps");
    }

    [Fact]
    public void Lanczos_Reports_An_Invariant_Subspace_As_Breakdown_With_Exact_Eigenvalues()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        double[] spectrum = [1, 1, 1, 2, 3];
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 3));
        var stopped = Lanczos.Eigenpairs(op, new LanczosOptions(K: 3, Which: SpectrumEnd.Smallest, RestartOnBreakdown: false));
        Assert.Equal(SolverStatus.Breakdown, stopped.Status);
        Assert.Equal(1, stopped.Breakdowns);
        Assert.Equal(3, stopped.Iterations); // the Krylov space of a generic start vector has dimension 3 = distinct eigenvalues.
        Assert.Equal([1.0, 2.0, 3.0], stopped.Eigenvalues, (x, y) => Math.Abs(x - y) <= Tolerances.ExactAgreement);
        Assert.All(stopped.ResidualNorms, r => Assert.True(double.IsFinite(r) && r <= Tolerances.ExactAgreement));

        // With restarts the multiplicity is found.
        var restarted = Lanczos.Eigenpairs(op, new LanczosOptions(K: 4, Which: SpectrumEnd.Smallest));
        Assert.Equal(SolverStatus.Converged, restarted.Status);
        Assert.Equal([1.0, 1.0, 1.0, 2.0], restarted.Eigenvalues, (x, y) => Math.Abs(x - y) <= Tolerances.ExactAgreement);
        Assert.True(restarted.Breakdowns >= 1);
    }

    [Fact]
    public void Lanczos_Stops_Without_Convergence_At_The_Iteration_Budget()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(KnownSpectrum(), 2));
        var result = Lanczos.Eigenpairs(op, new LanczosOptions(K: 3, Which: SpectrumEnd.Smallest, MaxIterations: 6, Tolerance: 1e-12));
        Assert.Equal(SolverStatus.StoppedWithoutConvergence, result.Status);
        Assert.Equal(6, result.Applications);
        Assert.Equal(3, result.Eigenvalues.Count);
    }

    [Theory]
    [InlineData("mlp 3-4-3-3 smoolu/smoolu scaled")]
    [InlineData("dag shared softplus ℓ=3")]
    [InlineData("mlp 3-5-3 relu")]
    public void Lanczos_On_A_Network_Hessian_Matches_The_Dense_Spectrum(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var op = new HessianOperator(new ResidualMap(model, c.Data, batchSize: 3));
        var dense = DenseSpectrum.Compute(op);
        Assert.True(dense.Asymmetry <= Tolerances.SecondOrderAgreement);
        double top = dense.Eigenvalues.Max(Math.Abs);
        foreach (var which in new[] { SpectrumEnd.Largest, SpectrumEnd.Smallest, SpectrumEnd.LargestMagnitude })
        {
            var result = Lanczos.Eigenpairs(op, new LanczosOptions(K: 3, Which: which, Tolerance: Tolerances.LanczosNetwork, VerifyResiduals: true));
            Assert.Equal(SolverStatus.Converged, result.Status);
            var expected = dense.Select(which, 3);
            for (int i = 0; i < 3; i++)
            {
                Assert.True(Math.Abs(expected[i] - result.Eigenvalues[i]) <= Tolerances.RitzValue * top, $"{which} {i}: {expected[i]} vs {result.Eigenvalues[i]}");
                Assert.True(result.ResidualNorms[i] <= Tolerances.LanczosNetwork * top * 10, $"{which} residual {result.ResidualNorms[i]:e2}");
            }
        }
    }

    [Fact]
    public void Slq_Moments_Match_Exact_Traces_Of_Powers()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var spectrum = KnownSpectrum();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 5));
        // Budget: 40 probes × 30 steps; 2m − 1 = 59 ≥ 4, so each probe's rule is exact for A^k, k ≤ 4, and only probe noise remains.
        var result = StochasticLanczosQuadrature.Estimate(op, new SlqOptions(Steps: 30, ProbeCount: 40, Seed: 1));
        int n = spectrum.Length;
        Assert.Equal(40 * 30, result.Applications);
        Assert.Equal(1.0, result.Moments[0], Tolerances.QuadratureWeightDigits); // Σ τ_i = 1 for every probe.
        for (int k = 1; k <= 4; k++)
        {
            double exact = spectrum.Sum(l => Math.Pow(l, k)) / n;
            double error = Math.Abs(result.Moments[k] - exact);
            Assert.True(error <= Tolerances.StandardErrors * result.MomentStandardErrors[k], $"k={k}: {result.Moments[k]} vs {exact}, se {result.MomentStandardErrors[k]:e2}");
            // For v uniform on the sphere, Var[vᵀBv] = 2(tr(B²)/n − (tr B/n)²)/(n + 2); the sample standard error agrees within a factor 2.5 at 40 probes.
            double meanPower = spectrum.Average(l => Math.Pow(l, k)), meanSquare = spectrum.Average(l => Math.Pow(l, 2 * k));
            double theory = Math.Sqrt(2 * (meanSquare - meanPower * meanPower) / (n + 2) / 40);
            Assert.InRange(result.MomentStandardErrors[k] / theory, Tolerances.StandardErrorRatioLow, Tolerances.StandardErrorRatioHigh);
        }
        Assert.Equal(result.Moments[2] * n, result.Trace(x => x * x), Tolerances.MomentTraceDigits);
        // The density integrates to 1 on its grid (trapezoid rule) and peaks inside the spectrum.
        double integral = 0;
        for (int g = 1; g < result.Grid.Count; g++)
        {
            integral += (result.Grid[g] - result.Grid[g - 1]) * (result.Density[g] + result.Density[g - 1]) / 2;
        }
        Assert.Equal(1.0, integral, Tolerances.DensityMassDigits);
        Assert.True(result.Grid[0] < spectrum.Min() && result.Grid[^1] > spectrum.Max());
    }

    [Fact]
    public void Slq_With_Full_Krylov_Space_Is_Exact_For_Every_Moment()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        // Few distinct eigenvalues: each probe's Krylov space is invariant after 4 steps and its rule exact for every f.
        double[] spectrum = [.. Enumerable.Repeat(2.0, 10), .. Enumerable.Repeat(-1.0, 20), .. Enumerable.Repeat(0.5, 5), 4.0];
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 9));
        var result = StochasticLanczosQuadrature.Estimate(op, new SlqOptions(ProbeCount: 3));
        Assert.All(result.Rules, r => Assert.Equal(4, r.Steps));
        Assert.Equal(3, result.Breakdowns);
        Assert.All(result.Rules, r => Assert.Equal([-1.0, 0.5, 2.0, 4.0], r.Nodes, (x, y) => Math.Abs(x - y) <= Tolerances.ExactAgreement));
    }

    [Fact]
    public void Hutchinson_Converges_To_The_Trace_Within_Its_Standard_Error()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var spectrum = KnownSpectrum();
        double trace = spectrum.Sum();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 11));
        // Budget: 400 Rademacher probes, fixed seed; the standard error shrinks as 1/√N.
        var small = Hutchinson.Trace(op, new TraceOptions(MaxProbes: 25, Tolerance: 0, Seed: 4));
        var large = Hutchinson.Trace(op, new TraceOptions(MaxProbes: 400, Tolerance: 0, Seed: 4));
        Assert.Equal(400, large.Applications);
        Assert.Equal(SolverStatus.StoppedWithoutConvergence, large.Status);
        Assert.True(Math.Abs(large.Trace - trace) <= Tolerances.StandardErrors * large.StandardError, $"{large.Trace} vs {trace} ± {large.StandardError}");
        Assert.True(large.StandardError <= small.StandardError * Tolerances.StandardErrorShrink, $"{large.StandardError} vs {small.StandardError}");
        // Var[zᵀAz] = 2(‖A‖²_F − Σ A²_ii): the sample variance agrees to within 25 % at N = 400.
        var a = op.Matrix;
        double variance = 2 * (a.pow(2).sum().item<double>() - a.diagonal().pow(2).sum().item<double>());
        Assert.InRange(large.StandardError * large.StandardError * 400 / variance, Tolerances.SampleVarianceRatioLow, Tolerances.SampleVarianceRatioHigh);
        // A loose tolerance stops early, with status Converged.
        var early = Hutchinson.Trace(op, new TraceOptions(MaxProbes: 400, Tolerance: 0.2, Seed: 4));
        Assert.Equal(SolverStatus.Converged, early.Status);
        Assert.True(early.Applications < 400);
    }

    [Fact]
    public void HutchPlusPlus_Beats_Hutchinson_On_A_Low_Rank_Plus_Noise_Matrix_At_The_Same_Budget()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        // PSD, 10 large eigenvalues and a flat tail: the regime of Meyer et al. 2021, Fig. 2.
        double[] spectrum = [.. Enumerable.Range(0, 10).Select(i => 100.0 / (i + 1)), .. Enumerable.Repeat(0.05, 190)];
        double trace = spectrum.Sum();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 13));
        double hutchError = 0, plusError = 0;
        for (int seed = 0; seed < 5; seed++)
        {
            var h = Hutchinson.Trace(op, new TraceOptions(MaxProbes: 99, Tolerance: 0, Seed: seed));
            var p = HutchPlusPlus.Trace(op, new TraceOptions(MaxProbes: 99, Seed: seed));
            Assert.Equal(99, p.Applications);
            Assert.True(Math.Abs(p.Trace - trace) <= Tolerances.StandardErrors * p.StandardError + Tolerances.TraceRounding * trace);
            hutchError += Math.Abs(h.Trace - trace);
            plusError += Math.Abs(p.Trace - trace);
        }
        Assert.True(plusError * 10 <= hutchError, $"Hutch++ {plusError / 5:e2}, Hutchinson {hutchError / 5:e2}");
        // With m/3 ≥ n the sketch spans ℝⁿ and Hutch++ is exact.
        using var small = new DenseOperator(CurvatureReference.WithSpectrum([3, -1, 2, 0.5], 1));
        var exact = HutchPlusPlus.Trace(small, new TraceOptions(MaxProbes: 12));
        Assert.Equal(4.5, exact.Trace, Tolerances.ExactTraceDigits);
    }

    [Fact]
    public void Power_Iteration_Finds_The_Top_Eigenvalues_And_Counts_Its_Products()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var spectrum = KnownSpectrum();
        using var op = new DenseOperator(CurvatureReference.WithSpectrum(spectrum, 17));
        var result = PowerIteration.Eigenpairs(op, new PowerIterationOptions(K: 3, MaxIterations: 2000, Tolerance: Tolerances.PowerIterationTolerance, Rule: PowerStoppingRule.Residual));
        Assert.Equal(SolverStatus.Converged, result.Status);
        Assert.Equal([10.0, 8.0, 7.0], result.Eigenvalues, (x, y) => Math.Abs(x - y) <= Tolerances.PowerIterationResidual);
        Assert.Equal(result.IterationsPerPair.Sum(), result.Applications);
        Assert.All(result.ResidualNorms, r => Assert.True(r <= Tolerances.PowerIterationResidual));
        // PyHessian's default rule (relative change < 1e−3) stops much earlier, less accurately.
        var pyhessian = PowerIteration.Eigenpairs(op);
        Assert.Equal(10.0, pyhessian.Eigenvalues[0], Tolerances.PyHessianRuleDigits);
        Assert.True(pyhessian.Applications <= 100);
        // Lanczos reaches the same three to the same residual with fewer products.
        var lanczos = Lanczos.Eigenpairs(op, new LanczosOptions(K: 3, Tolerance: Tolerances.PowerIterationTolerance / 10));
        Assert.True(lanczos.Applications < result.Applications, $"Lanczos {lanczos.Applications}, power {result.Applications}");
    }

    [Fact]
    public void Dense_Spectrum_Of_The_Gauss_Newton_Matrix_Is_That_Of_2JtJ()
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get("mlp 3-4-3-1 sigmoid/smoolu scaled");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        var j = map.Jacobian();
        var expected = linalg.eigvalsh(2 * j.t().mm(j)).data<double>().ToArray();
        var result = DenseSpectrum.Compute(new GaussNewtonOperator(map), eigenvectors: true);
        double top = expected.Max();
        Assert.Equal(expected, result.Eigenvalues, (x, y) => Math.Abs(x - y) <= Tolerances.SecondOrderAgreement * top);
        Assert.NotNull(result.Eigenvectors);
        Assert.Equal(model.ParameterCount, result.Applications);
        // rank G ≤ ℓd = 7 here: the rest of the spectrum is zero.
        Assert.True(result.Eigenvalues.Count(x => Math.Abs(x) > Tolerances.ZeroEigenvalue * top) <= map.Constraints);
    }
}
