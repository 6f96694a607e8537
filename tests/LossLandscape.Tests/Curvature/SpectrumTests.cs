using LossLandscape.Operators;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Reports;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Curvature;

/// <summary>
/// A point of M reached by Gauss–Newton, computed once for the tests of this file: iris (every fifth row, one-hot ℓ = 3,
/// ℓd = 90), one smooLU layer of width 40 (n = 323), as <see cref="PaperVerification.TrainedPoint"/> builds it.
/// </summary>
public sealed class PointOfM
{
    public PointOfM()
    {
        TorchRuntime.EnsureInitialized();
        Data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, projection) = PaperVerification.TrainedPoint(Data, 40, seed: 1);
        Assert.Equal(SolverStatus.Converged, projection.Status);
        Point = point;
    }

    public Dataset Data { get; }

    public NetworkPoint Point { get; }
}

/// <summary><see cref="HessianSpectrum"/>, <see cref="InertiaRule"/>, the Auto choice of the certificate and progress, on a point of M and off it.</summary>
public sealed class HessianSpectrumTests(PointOfM m) : IClassFixture<PointOfM>
{
    [Fact]
    public void Gram_Spectrum_At_A_Point_Of_M_Equals_The_Dense_Hessian_Spectrum()
    {
        using var scope = NewDisposeScope();
        using var model = m.Point.ToModel();
        var map = new ResidualMap(model, m.Data);
        int n = map.ParameterCount;
        var dense = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Dense, K: n));
        var gram = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Gram, K: n));
        Assert.True(gram.Manifold!.Holds, gram.Note);
        Assert.Contains("on M", gram.Note);
        Assert.Equal(n, dense.AllEigenvalues!.Count);
        Assert.Equal(n, gram.Eigenvalues.Count);
        double scale = dense.AllEigenvalues.Max(Math.Abs);
        for (int i = 0; i < n; i++)
        {
            Assert.True(Math.Abs(dense.AllEigenvalues[i] - gram.Eigenvalues[i]) <= Tolerances.GramAgreesWithDense * scale,
                $"λ{i + 1}: dense {dense.AllEigenvalues[i]:e6} vs gram {gram.Eigenvalues[i]:e6}");
        }
        // The σ(J) route's inertia: ℓd positive, n − ℓd zero (Proposition 2.3).
        var inertia = gram.Inertia!;
        Assert.True(inertia.Decided, inertia.Note);
        Assert.Equal((map.Constraints, n - map.Constraints, 0), (inertia.Positive, inertia.Zero, inertia.Negative));
    }

    [Fact]
    public void Lanczos_Smallest_At_A_Point_Of_M_Is_Zero_With_Multiplicity_Within_The_Bound()
    {
        using var scope = NewDisposeScope();
        using var model = m.Point.ToModel();
        var map = new ResidualMap(model, m.Data);
        int n = map.ParameterCount, constraints = map.Constraints;
        const int k = 5;
        var smallest = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, K: k, Which: SpectrumEnd.Smallest));
        var zeros = smallest.Zeros;
        Assert.NotNull(zeros);
        Assert.Equal(SolverStatus.Converged, smallest.Status);
        Assert.Equal(Enumerable.Repeat(0.0, k), smallest.Eigenvalues);
        Assert.All(smallest.Converged, Assert.True);
        Assert.Equal(n - constraints, zeros.Multiplicity); // a regular point: rank J = ℓd
        Assert.True(zeros.ResidualTermSteps > 0 && zeros.Bound >= zeros.ResidualTermNorm, $"{zeros.Bound:e3} vs ‖R‖ {zeros.ResidualTermNorm:e3}");
        Assert.Contains("multiplicity", smallest.Note);
        Assert.Contains("estimate", smallest.Note);

        // Against all n eigenvalues of the dense ∇²L, known to its resolution n·ε·‖∇²L‖: the n − ℓd smallest lie within the
        // bound of 0, the next one above the stated lower edge.
        var dense = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Dense, K: 1)).AllEigenvalues!.Reverse().ToArray();
        double resolution = InertiaRule.Resolution(n, dense.Max(Math.Abs));
        for (int i = 0; i < zeros.Multiplicity; i++)
        {
            Assert.True(Math.Abs(dense[i]) <= zeros.Bound + resolution, $"λ{i + 1} = {dense[i]:e3} outside ±({zeros.Bound:e3} + {resolution:e3})");
        }
        Assert.True(dense[zeros.Multiplicity] >= zeros.LowestNonzero - resolution, $"{dense[zeros.Multiplicity]:e3} < {zeros.LowestNonzero:e3}");
    }

    [Fact]
    public void Gauss_Newton_Smallest_Are_The_Exact_Zeros_Of_2JtJ()
    {
        using var scope = NewDisposeScope();
        using var model = m.Point.ToModel();
        var map = new ResidualMap(model, m.Data);
        var smallest = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, CurvatureKind.GaussNewton, K: 3, Which: SpectrumEnd.Smallest));
        Assert.NotNull(smallest.Zeros);
        Assert.Equal(map.ParameterCount - map.Constraints, smallest.Zeros.Multiplicity);
        Assert.Equal(0, smallest.Zeros.ResidualTermNorm); // 2JᵀJ has no residual term
        Assert.Equal(0, smallest.Products);
    }

    [Fact]
    public void Lanczos_Values_That_Did_Not_Converge_Are_Marked_Not_Converged()
    {
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-5-1 tanh");
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        var options = new SpectrumOptions(SpectrumMethod.Lanczos, K: 3, MaxIterations: Tolerances.TooFewLanczosSteps, Tolerance: Tolerances.RitzValue);
        var run = HessianSpectrum.Compute(map, options);
        Assert.Equal(SolverStatus.StoppedWithoutConvergence, run.Status);
        Assert.Contains(false, run.Converged);
        Assert.Contains("NOT converged", run.Note);
        // A value marked not converged has an explicit residual above tol·max|θ| (max over all Ritz values ≥ over those returned).
        double scale = run.Eigenvalues.Max(Math.Abs);
        for (int i = 0; i < run.Eigenvalues.Count; i++)
        {
            Assert.True(run.Converged[i] || run.Residuals![i] > options.Tolerance * scale, $"value {i + 1}: residual {run.Residuals![i]:e3}");
        }
        // With the default budget every value converges.
        var converged = HessianSpectrum.Compute(map, options with { MaxIterations = null });
        Assert.Equal(SolverStatus.Converged, converged.Status);
        Assert.All(converged.Converged, Assert.True);
    }

    [Fact]
    public void Dense_Spectrum_Keeps_All_n_Eigenvalues_Descending()
    {
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-5-1 tanh");
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        var dense = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Dense, K: 2, Which: SpectrumEnd.Smallest));
        var all = dense.AllEigenvalues!;
        Assert.Equal(map.ParameterCount, all.Count);
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First >= p.Second), "not descending");
        Assert.Equal([all[^1], all[^2]], dense.Eigenvalues);
        Assert.Equal(map.ParameterCount, dense.Products);
    }

    [Fact]
    public void Auto_Certificate_Picks_Gram_At_A_Point_Of_M_And_Dense_Off_It()
    {
        using var scope = NewDisposeScope();
        using var model = m.Point.ToModel();
        var map = new ResidualMap(model, m.Data);
        var auto = Certificate.Compute(map);
        Assert.True(auto.OnManifold);
        Assert.Equal("gram", auto.Hessian.Method);
        Assert.True(auto.Hessian.Decided, auto.Hessian.Note);
        Assert.Equal((map.Constraints, map.ParameterCount - map.Constraints, 0), (auto.Hessian.Positive, auto.Hessian.Zero, auto.Hessian.Negative));

        var mlp = new Mlp(4, [new HiddenLayer(10, new Models.Activations.SmooLU())], 3);
        using var random = new NetworkModel(mlp, mlp.InitialParameters(3));
        var off = Certificate.Compute(new ResidualMap(random, m.Data));
        Assert.False(off.OnManifold);
        Assert.Equal("dense", off.Hessian.Method);

        // The rule at the size of the measurement (n = 3001 on M): gram; off M, or with ℓd ≥ n: dense.
        Assert.Equal(InertiaMethod.Gram, Certificate.ChooseMethod(3001, 1924, squaredLoss: true, onManifold: true));
        Assert.Equal(InertiaMethod.Dense, Certificate.ChooseMethod(3001, 1924, squaredLoss: true, onManifold: false));
        Assert.Equal(InertiaMethod.Dense, Certificate.ChooseMethod(3001, 1924, squaredLoss: false, onManifold: true));
        Assert.Equal(InertiaMethod.Dense, Certificate.ChooseMethod(300, 450, squaredLoss: true, onManifold: true));
    }

    [Fact]
    public void Inertia_Rule_Decides_From_Sigma_Of_J_Only_On_M_With_The_Squared_Loss()
    {
        var rank = RankDecision.FromSingularValues([3, 2, 1], 3, Float64.Epsilon, "svd of J");
        var on = InertiaRule.FromJacobian(rank, 10, squaredLoss: true, onManifold: true);
        Assert.True(on.Decided);
        Assert.Equal((3, 7, 0), (on.Positive, on.Zero, on.Negative));
        Assert.Equal([18.0, 8.0, 2.0], on.Eigenvalues); // 2σᵢ²
        Assert.False(InertiaRule.FromJacobian(rank, 10, squaredLoss: true, onManifold: false).Decided);
        Assert.False(InertiaRule.FromJacobian(rank, 10, squaredLoss: false, onManifold: true).Decided);
        Assert.Equal((2, 1, 1), InertiaRule.Count([5, 1, 0, -2], InertiaRule.Resolution(4, 5)));
    }

    [Fact]
    public void ToDense_Reports_Increasing_Fractions_Per_Block_And_The_Certificate_Names_Its_Stages()
    {
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-5-1 tanh");
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        var op = new HessianOperator(map);
        var columns = new Recorder();
        op.ToDense(blockSize: 4, limits: new RunLimits(Progress: columns));
        int blocks = (int)Math.Ceiling(op.Columns / 4.0);
        Assert.Equal(blocks + 1, columns.Reports.Count); // the start, then one report per block
        Assert.Equal(0, columns.Reports[0].Fraction);
        Assert.Equal(1, columns.Reports[^1].Fraction);
        Assert.True(columns.Reports.Zip(columns.Reports.Skip(1)).All(p => p.Second.Fraction > p.First.Fraction), "fractions do not increase");
        Assert.Equal($"columns {op.Columns}/{op.Columns}", columns.Reports[^1].Stage);

        var trace = new Recorder();
        op.ExactTrace(blockSize: 4, limits: new RunLimits(Progress: trace));
        Assert.Equal(blocks + 1, trace.Reports.Count);

        var stages = new Recorder();
        Certificate.Compute(map, new CertificateOptions(InertiaMethod.Dense), new RunLimits(Progress: stages));
        Assert.Contains(stages.Reports, r => r.Stage.StartsWith("dense Hessian", StringComparison.Ordinal) && r.Fraction > 0 && r.Fraction < 1);
        Assert.Contains(stages.Reports, r => r.Stage == "eigenvalues");
        Assert.True(stages.Reports.Zip(stages.Reports.Skip(1)).All(p => p.Second.Fraction >= p.First.Fraction), "certificate progress goes back");
        Assert.Equal(1, stages.Reports[^1].Fraction);
    }

    /// <summary>Records reports synchronously, in order (unlike <see cref="Progress{T}"/>, which posts them).</summary>
    private sealed class Recorder : IProgress<ProgressReport>
    {
        public List<ProgressReport> Reports { get; } = [];

        public void Report(ProgressReport value) => Reports.Add(value);
    }
}

/// <summary>The one convergence test: a NaN residual is a breakdown, never a convergence, in every estimator.</summary>
public sealed class ConvergenceTestTests
{
    [Fact]
    public void Convergence_Test_Reads_Max_Of_Relative_And_Absolute_And_Calls_NaN_A_Breakdown()
    {
        Assert.Equal(SolverStatus.Converged, ConvergenceTest.Evaluate(1e-7, 1, Tolerances.LanczosTolerance));
        Assert.Equal(SolverStatus.StoppedWithoutConvergence, ConvergenceTest.Evaluate(1e-5, 1, Tolerances.LanczosTolerance));
        Assert.Equal(SolverStatus.Converged, ConvergenceTest.Evaluate(1e-5, 1, Tolerances.LanczosTolerance, absoluteTolerance: 1e-4));
        Assert.Equal(SolverStatus.Breakdown, ConvergenceTest.Evaluate(double.NaN, 1, Tolerances.LanczosTolerance));
        Assert.Equal(SolverStatus.Breakdown, ConvergenceTest.Evaluate(0, double.NaN, Tolerances.LanczosTolerance));
        Assert.False(ConvergenceTest.IsMet(double.NaN, 1, double.PositiveInfinity));
        Assert.Equal("stoppedWithoutConvergence", SolverStatus.StoppedWithoutConvergence.ToJsonName());
        Assert.Equal("breakdown", SolverStatus.Breakdown.ToJsonName());
    }

    [Fact]
    public void Estimators_On_An_Operator_That_Returns_NaN_Report_Breakdown()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var matrix = CurvatureReference.WithSpectrum([3, 2, 1, 0.5, 0.25], 1);
        matrix[0, 0] = tensor(double.NaN);
        using var op = new DenseOperator(matrix, isSymmetric: true);
        var lanczos = Lanczos.Eigenpairs(op, new LanczosOptions(K: 2, VerifyResiduals: true));
        Assert.Equal(SolverStatus.Breakdown, lanczos.Status);
        Assert.DoesNotContain(true, lanczos.Converged);
        var power = PowerIteration.Eigenpairs(op, new PowerIterationOptions(K: 2));
        Assert.Equal(SolverStatus.Breakdown, power.Status);
        Assert.Equal(SolverStatus.Breakdown, Hutchinson.Trace(op).Status);
        Assert.Equal(SolverStatus.Breakdown, HutchPlusPlus.Trace(op, new TraceOptions(MaxProbes: 3)).Status);
        Assert.Equal(SolverStatus.Breakdown, StochasticLanczosQuadrature.Estimate(op, new SlqOptions(Steps: 3, ProbeCount: 2)).Status);
        Assert.Equal(SolverStatus.Breakdown, ExactTrace.Compute(op).Status);
    }

    [Fact]
    public void Memory_Budget_Refuses_In_One_Line_Naming_The_Need_The_Budget_And_The_Alternative()
    {
        MemoryBudget.Require("fits", MemoryBudget.DenseMatrixBytes(10, 10), MemoryBudget.DefaultBytes, "nothing");
        var e = Assert.Throws<MemoryBudgetExceededException>(() =>
            MemoryBudget.Require("the dense 30000 × 30000 matrix", MemoryBudget.DenseMatrixBytes(30000, 30000), MemoryBudget.DefaultBytes, "use Lanczos"));
        Assert.Equal(MemoryBudget.DenseMatrixBytes(30000, 30000), e.RequiredBytes);
        Assert.Equal(MemoryBudget.DefaultBytes, e.BudgetBytes);
        Assert.Equal("use Lanczos", e.Alternative);
        Assert.Equal("the dense 30000 × 30000 matrix needs 7.2 GB, over the memory budget of 2.147 GB; use Lanczos", e.Message);
    }
}
