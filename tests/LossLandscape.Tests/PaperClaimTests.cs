using LossLandscape.Construction;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using LossLandscape.Reports;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>One test per claim of the paper, each on the data it names.</summary>
public class PaperClaimTests
{
    private static Dataset Iris(bool oneHot) => PaperVerification.Iris(oneHot);

    private static Dataset Diabetes() => DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);

    public static TheoryData<string, string, bool> GoalCases() => new()
    {
        { "diabetes", "smoolu", false }, { "diabetes", "relu", false },
        { "iris", "smoolu", false }, { "iris", "relu", false },
        { "iris", "smoolu", true }, { "iris", "relu", true },
        { "iris", "rectified-tanh", true }, { "iris", "rectified-sigmoid", false },
    };

    [Theory]
    [MemberData(nameof(GoalCases))]
    public void Lemma33_Construction_Meets_The_Goal(string dataset, string activation, bool oneHot)
    {
        var data = dataset == "diabetes" ? Diabetes() : Iris(oneHot);
        var options = new ConstructionOptions(ActivationRegistry.Get(activation), [data.Count], InputScaling.Standardize(data));
        var built = Lemma33Interpolation.Construct(data, options);
        Assert.True(built.Diagnostics.MeetsGoal, $"max residual {built.Diagnostics.MaxResidual:e2} > goal {built.Diagnostics.Goal:e2}");
        // Independently: evaluate the written network on the raw data.
        using var scope = NewDisposeScope();
        var f = built.Point.Network.Forward(tensor(built.Point.Parameters), data.InputsTensor());
        double max = (f - data.TargetsTensor()).abs().max().item<double>();
        Assert.True(max <= Tolerances.ConstructionGoal * Math.Max(1, data.MaxAbsTarget()));
    }

    [Fact]
    public void Lemma33_Polishes_On_The_Problem_The_Caller_Opens()
    {
        // The polish on a caller's problem (here the map the default opens itself) writes the same network, bit for bit, and
        // leaves that problem at the point it returns; a problem over other rows is refused before any step.
        var data = Iris(oneHot: false);
        var options = new ConstructionOptions(new SmooLU(), [data.Count], InputScaling.Standardize(data));
        var plain = Lemma33Interpolation.Construct(data, options);
        var opened = new List<IDisposable>();
        try
        {
            ResidualMap? problem = null;
            var mine = Lemma33Interpolation.Construct(data, options, point =>
            {
                Assert.Null(problem); // opened once, after the triangular solve
                var model = point.ToModel();
                opened.Add(model);
                problem = new ResidualMap(model, data);
                opened.Add(problem);
                return problem;
            });
            Assert.Equal(plain.Point.Parameters, mine.Point.Parameters);
            Assert.Equal(plain.Diagnostics with { Seconds = 0 }, mine.Diagnostics with { Seconds = 0 });
            Assert.Equal(mine.Point.Parameters, problem!.GetPoint().data<double>().ToArray());

            var fewer = data.Subset(Enumerable.Range(0, data.Count - 1));
            var refusal = Assert.Throws<ArgumentException>(() => Lemma33Interpolation.Construct(data, options, point =>
            {
                var model = point.ToModel();
                opened.Add(model);
                var other = new ResidualMap(model, fewer);
                opened.Add(other);
                return other;
            }));
            Assert.Contains($"{data.Count - 1} rows", refusal.Message, StringComparison.Ordinal);
        }
        finally
        {
            opened.Reverse();
            opened.ForEach(d => d.Dispose());
        }
    }

    [Theory]
    [InlineData("smoolu", true)]
    [InlineData("relu", false)]
    public void Lemma33_With_Remark42_Copies_Meets_The_Goal_On_Digits(string activation, bool oneHot)
    {
        // Digits (d = 1797) with a last hidden layer of 10·d = 17,970 units: Remark 4.2's copies, one per
        // output column (one-hot) or per target value (ℓ = 1), each with its own projection direction.
        var data = DatasetLoader.Load("builtin:digits", oneHot ? TargetSpec.Classes("digit") : TargetSpec.LastColumn);
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(ActivationRegistry.Get(activation), [10 * data.Count]));
        Assert.StartsWith(oneHot ? "10 copies" : "9 copies", built.Diagnostics.Direction);
        Assert.True(built.Diagnostics.MeetsGoal, $"max residual {built.Diagnostics.MaxResidual:e2} > goal {built.Diagnostics.Goal:e2}");
        using var scope = NewDisposeScope();
        var f = built.Point.Network.Forward(tensor(built.Point.Parameters), data.InputsTensor());
        Assert.True((f - data.TargetsTensor()).abs().max().item<double>() <= Tolerances.ConstructionGoal * Math.Max(1, data.MaxAbsTarget()));
    }

    [Fact]
    public void Lemma33_On_Digits_With_h_Equal_d_Stops_At_The_Float64_Cancellation_Floor()
    {
        // With h = d there is one copy: the interpolant along one direction has slopes Δy/gap, f(xᵢ) = Σ_k V_k A_ik
        // cancels by C, and float64 leaves about ε·C. On digits C ≥ (label changes)² ≈ 2.6e6, so the goal
        // 1e−10 is out of reach; what holds is that the residual sits at that floor (within a factor 4) and
        // below 1e−8·max(1, max|y|).
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new Relu(), [data.Count]));
        var g = built.Diagnostics;
        Assert.True(g.MaxResidual <= Tolerances.CancellationFloorFactor * Float64.Epsilon * g.Amplification, $"{g.MaxResidual:e2} vs ε·C {Float64.Epsilon * g.Amplification:e2}");
        Assert.True(g.MaxResidual <= Tolerances.CancellationFloor);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Corollary34_Deeper_Networks_Fit_Iris_Exactly(int depth)
    {
        var data = Iris(oneHot: false);
        var widths = Enumerable.Repeat(5, depth - 1).Append(data.Count).ToArray();
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), widths, InputScaling.Standardize(data)));
        Assert.Equal(depth, ((Mlp)built.Point.Network).Hidden.Count);
        Assert.True(built.Diagnostics.MeetsGoal, $"{built.Diagnostics.MaxResidual:e2}");
    }

    [Fact]
    public void Construction_Refuses_A_Narrow_Layer_Duplicates_And_A_Non_Rectified_Activation()
    {
        var iris = Iris(oneHot: false);
        var narrow = Assert.Throws<LandscapeInputException>(() => Lemma33Interpolation.Construct(iris, new ConstructionOptions(new SmooLU(), [iris.Count - 1])));
        Assert.Contains($"smallest width that works is {iris.Count}", narrow.Message);
        var raw = DatasetLoader.Load("builtin:iris", TargetSpec.LastColumn);
        var dup = Assert.Throws<LandscapeInputException>(() => Lemma33Interpolation.Construct(raw, new ConstructionOptions(new SmooLU(), [raw.Count])));
        Assert.Contains("rows 102, 143", dup.Message);
        var tanh = Assert.Throws<LandscapeInputException>(() => Lemma33Interpolation.Construct(iris, new ConstructionOptions(new Tanh(), [iris.Count])));
        Assert.Contains("not rectified", tanh.Message);
    }

    [Fact]
    public void Dedupe_Keeps_One_Of_Agreeing_Rows_And_Refuses_Conflicts()
    {
        var raw = DatasetLoader.Load("builtin:iris", TargetSpec.LastColumn);
        Assert.Equal(149, raw.Dedupe().Count);
        var y = new double[raw.Count, 1];
        for (int i = 0; i < raw.Count; i++)
        {
            y[i, 0] = i;
        }
        var e = Assert.Throws<LandscapeInputException>(() => raw.WithTargets(y).Dedupe());
        Assert.Contains("rows 102 and 143", e.Message);
    }

    [Fact]
    public void Theorem41_Constructed_Point_Is_Regular_With_Dimension_n_Minus_ld()
    {
        var data = Iris(oneHot: true);
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), [data.Count], InputScaling.Standardize(data)));
        using var model = built.Point.ToModel();
        var cert = Certificate.Compute(new ResidualMap(model, data), new CertificateOptions(InertiaMethod.Dense));
        Assert.True(cert.OnManifold);
        Assert.Equal(3 * 149, cert.Jacobian.Rank);
        Assert.True(cert.Jacobian.Decided);
        Assert.Equal(cert.N - 3 * 149, cert.ManifoldDimension);
        Assert.True(cert.RegularPoint);
    }

    [Fact]
    public void Proposition23_Dense_And_Gram_Agree_At_A_Point_Of_M()
    {
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, projection) = PaperVerification.TrainedPoint(data, 40, seed: 1);
        Assert.Equal(SolverStatus.Converged, projection.Status);
        using var model = point.ToModel();
        var map = new ResidualMap(model, data);
        var dense = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Dense));
        var gram = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Gram));
        int m = map.Constraints, n = map.ParameterCount;
        foreach (var c in new[] { dense, gram })
        {
            Assert.True(c.Hessian.Decided, c.Hessian.Note);
            Assert.Equal((m, n - m, 0), (c.Hessian.Positive, c.Hessian.Zero, c.Hessian.Negative));
        }
        // The nonzero eigenvalues agree: dense eig(∇²L) against 2σᵢ(J)², to the dense method's resolution.
        Assert.Equal(m, dense.Hessian.Eigenvalues.Length);
        for (int k = 0; k < m; k++)
        {
            Assert.Equal(gram.Hessian.Eigenvalues[k], dense.Hessian.Eigenvalues[k], dense.Hessian.Tolerance * Tolerances.DenseResolutionMultiple);
        }
    }

    [Fact]
    public void Gram_Route_Refuses_Off_Manifold_Points_Rather_Than_Guess()
    {
        var data = Iris(oneHot: true).Take(20);
        var mlp = new Mlp(4, [new HiddenLayer(30, new SmooLU())], 3);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(3));
        var cert = Certificate.Compute(new ResidualMap(model, data), new CertificateOptions(InertiaMethod.Gram));
        Assert.False(cert.OnManifold);
        Assert.False(cert.Hessian.Decided);
        Assert.Contains("not on M", cert.Hessian.Note);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Theorem21_Perturbing_The_Targets_Restores_Full_Rank(int seed)
    {
        var (data, point) = PaperVerification.RankDeficientPoint();
        using var model = point.ToModel();
        var before = JacobianFactorization.RankAt(new ResidualMap(model, data));
        Assert.True(before.Rank <= 7 && before.Decided);
        Assert.Equal(0.0, new ResidualMap(model, data).Loss(), Tolerances.ExactZeroLoss);
        var result = RegularValuePerturbation.Apply(model, data, 1e-2, seed, tolerance: 1e-12);
        Assert.True(result.PerturbationNorm < 1e-2);
        Assert.Equal(SolverStatus.Converged, result.Projection.Status);
        var after = JacobianFactorization.RankAt(new ResidualMap(model, result.Perturbed));
        Assert.Equal(12, after.Rank);
        Assert.True(after.Decided);
    }

    [Fact]
    public void Walk_Stays_On_M_And_Tangent_Steps_Are_Second_Order()
    {
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, _) = PaperVerification.TrainedPoint(data, 40, seed: 1);
        using var model = point.ToModel();
        var map = new ResidualMap(model, data);
        using var scope = NewDisposeScope();
        // Along the tangent the residual grows like ‖t‖², along the normal like ‖t‖ (halving t: ÷4 against ÷2).
        var p0 = ParameterVector.Get(model);
        var u = tensor(SeededNormal.Vector(new Random(4), map.ParameterCount));
        Tensor tangent;
        using (var factors = JacobianFactorization.At(map))
        {
            tangent = factors.TangentProjection(u);
        }
        var normal = u - tangent;
        double Residual(Tensor direction, double size)
        {
            ParameterVector.Set(model, p0 + direction * (size / direction.norm().item<double>()));
            double r = map.Residuals().norm().item<double>();
            ParameterVector.Set(model, p0);
            return r;
        }
        double tangentRatio = Residual(tangent, 1e-2) / Residual(tangent, 5e-3);
        double normalRatio = Residual(normal, 1e-2) / Residual(normal, 5e-3);
        Assert.InRange(tangentRatio, Tolerances.TangentRatioLow, Tolerances.TangentRatioHigh);
        Assert.InRange(normalRatio, Tolerances.NormalRatioLow, Tolerances.NormalRatioHigh);

        int factoredBefore = JacobianFactorization.FactorizationsOnThisThread;
        var walk = ManifoldWalk.Run(map, new WalkOptions(8, 0.2, Seed: 3, Tolerance: Tolerances.WalkRetraction));
        Assert.Equal(SolverStatus.Converged, walk.Status);
        // One factorization of J per step (it serves the recorded rank, the next tangent step and the chord retraction),
        // plus one at the start: counted by the walk and, independently, by the factorization itself.
        Assert.Equal(walk.Steps.Count, walk.Factorizations);
        Assert.Equal(walk.Factorizations, JacobianFactorization.FactorizationsOnThisThread - factoredBefore);
        Assert.All(walk.Steps.Skip(1), s => Assert.True(s.RetractionSteps > 0));
        Assert.All(walk.Steps, s => Assert.True(s.MaxAbsResidual <= Tolerances.WalkRetraction));
        Assert.All(walk.Steps, s => Assert.Equal(map.Constraints, s.Rank));
        Assert.True(walk.Steps[^1].Displacement > 0.3);
    }

    [Fact]
    public void Gauss_Newton_Converges_Quadratically_Back_Onto_M()
    {
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, _) = PaperVerification.TrainedPoint(data, 40, seed: 1);
        using var model = point.ToModel();
        var map = new ResidualMap(model, data);
        using var scope = NewDisposeScope();
        var rng = new Random(9);
        ParameterVector.Set(model, ParameterVector.Get(model) + tensor(SeededNormal.Vector(rng, map.ParameterCount)) * 1e-3);
        var result = GaussNewtonProjection.Project(map, new GaussNewtonOptions(1e-13, MaxIterations: 10));
        Assert.Equal(SolverStatus.Converged, result.Status);
        var h = result.MaxResidualHistory;
        // Quadratic: each error at most C·(previous)², with one C for the run, once in the asymptotic regime.
        Assert.True(h.Count <= 6, string.Join(", ", h));
        Assert.True(h[2] <= Tolerances.QuadraticConstantSlack * h[1] * h[1] / h[0], string.Join(", ", h));
    }

    [Fact]
    public void Factored_Gram_Matrix_Equals_J_Jt()
    {
        foreach (var c in Cases.Mlps())
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            var map = new ResidualMap(model, c.Data);
            var j = map.Jacobian();
            var expected = j.matmul(j.t());
            var k = GramMatrix.Compute(map);
            double scale = expected.abs().max().item<double>();
            Assert.True((k - expected).abs().max().item<double>() <= Tolerances.ExactAgreement * scale, c.Name);
        }
    }

    [Fact]
    public void Jacobian_Svd_Gives_The_Minimum_Norm_Solution_And_The_Null_Space()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        manual_seed(2);
        var j = randn(6, 15);
        using var svd = JacobianFactorization.Of(j, JacobianRoute.Svd);
        var r = randn(6);
        var s = svd.PseudoInverseTimes(r);
        var reference = linalg.pinv(j).matmul(r);
        Assert.True((s - reference).abs().max().item<double>() <= Tolerances.ExactAgreement);
        var t = svd.TangentProjection(randn(15));
        Assert.True(j.matmul(t).abs().max().item<double>() <= Tolerances.ExactAgreement);
        Assert.Equal(linalg.svdvals(j).data<double>().ToArray(), svd.Sigma.ToArray(), new ToleranceComparer(Tolerances.ExactAgreement));
    }

    [Fact]
    public void Rank_Decision_Reports_Its_Gap_And_Refuses_A_Blurred_One()
    {
        var clear = RankDecision.FromSingularValues([10, 1, 1e-13], 3, 1e-12, "test");
        Assert.Equal(2, clear.Rank);
        Assert.True(clear.Decided);
        Assert.Equal(1.0, clear.SigmaAbove);
        Assert.Equal(1e-13, clear.SigmaBelow);
        var blurred = RankDecision.FromSingularValues([10, 1, 3e-12], 3, 1e-12, "test");
        Assert.False(blurred.Decided);
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance * Math.Max(1, Math.Abs(x));

        public int GetHashCode(double obj) => 0;
    }
}
