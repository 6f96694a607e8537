using LossLandscape.Problem;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Construction;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Reports;

/// <summary>
/// Each claim of the paper as a measured check on the embedded data: Lemma 3.3, Corollary 3.4,
/// Remark 4.2, Theorem 2.1/4.1 (rank ℓd, dim M = n − ℓd), Proposition 2.3 (inertia, dense and Gram),
/// the perturbation to a regular value, and the walk on M.
/// </summary>
public static class PaperVerification
{
    /// <summary>Runs every check.</summary>
    /// <param name="limits">The token, checked before each claim (cancelling throws <see cref="OperationCanceledException"/>); the claim running reported.</param>
    public static IReadOnlyList<ClaimCheck> Run(RunLimits? limits = null)
    {
        limits ??= RunLimits.Default;
        TorchRuntime.EnsureInitialized();
        var checks = new List<ClaimCheck>();
        var steps = new (string Name, Func<IEnumerable<ClaimCheck>> Run)[]
        {
            ("foundations", () => FoundationChecks.Run()),
            ("Lemma 3.3", () => [Lemma33()]),
            ("Corollary 3.4", () => [Corollary34(2), Corollary34(3)]),
            ("Remark 4.2, Theorem 2.1/4.1, Proposition 2.3", RemarkTheoremProposition),
            ("Proposition 2.3", () => [DenseInertia(), GramInertiaOnDigits()]),
            ("Theorem 2.1 (perturbation)", () => [Perturbation()]),
            ("walk on M", () => [Walk()]),
            ("paths between minima", () => [ConnectedMinima()]),
        };
        for (int k = 0; k < steps.Length; k++)
        {
            limits.Checkpoint(steps[k].Name, (double)k / steps.Length);
            checks.AddRange(steps[k].Run());
        }
        limits.Report("done", 1.0);
        return checks;
    }

    /// <summary>The embedded iris data, duplicate removed (rows 102 and 143 agree), species one-hot (ℓ = 3) or as a number (ℓ = 1).</summary>
    public static Dataset Iris(bool oneHot) =>
        DatasetLoader.Load("builtin:iris", oneHot ? TargetSpec.Classes("species") : TargetSpec.LastColumn).Dedupe();

    /// <summary>Lemma 3.3 on diabetes (standardized inputs, ℓ = 1), smooLU, h = d.</summary>
    public static ClaimCheck Lemma33()
    {
        var watch = Stopwatch.StartNew();
        var data = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), [data.Count], InputScaling.Standardize(data)));
        return ResidualCheck("Lemma 3.3: zero training error, 1 hidden layer, h = d", data, built, watch);
    }

    /// <summary>Corollary 3.4 on iris (ℓ = 1), smooLU, depth T with earlier widths 8.</summary>
    public static ClaimCheck Corollary34(int depth)
    {
        var watch = Stopwatch.StartNew();
        var data = Iris(oneHot: false);
        var widths = Enumerable.Repeat(8, depth - 1).Append(data.Count).ToArray();
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), widths, InputScaling.Standardize(data)));
        return ResidualCheck($"Corollary 3.4: zero training error, depth {depth}", data, built, watch);
    }

    /// <summary>
    /// Remark 4.2 (iris one-hot, ℓ = 3), then at that point Theorem 2.1/4.1 (rank J = ℓd, dim M = n − ℓd)
    /// and Proposition 2.3 by the dense method (ℓd positive, n − ℓd zero, 0 negative).
    /// </summary>
    public static IEnumerable<ClaimCheck> RemarkTheoremProposition()
    {
        var watch = Stopwatch.StartNew();
        var data = Iris(oneHot: true);
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), [data.Count], InputScaling.Standardize(data)));
        yield return ResidualCheck("Remark 4.2: ℓ > 1 outputs fitted exactly", data, built, watch);

        watch.Restart();
        using var model = built.Point.ToModel();
        var cert = CertifyAt(model, data, new CertificateOptions(InertiaMethod.Dense));
        int n = cert.N, m = cert.Constraints;
        string setting = Setting(data, (Mlp)built.Point.Network);
        var j = cert.Jacobian;
        yield return new ClaimCheck("Theorem 2.1/4.1: rank J = ℓd, dim M = n − ℓd", setting,
            $"rank {j.Rank} (σ_rank {Sci(j.SigmaAbove)} vs tolerance {Sci(j.Tolerance)}), dim M {cert.ManifoldDimension}",
            $"rank {m}, dim M {n - m}", cert.OnManifold && j.Rank == m && j.Decided && cert.ManifoldDimension == n - m, watch.Elapsed.TotalSeconds);
        // At this constructed point σmax/σmin(J) is large; the dense method must either resolve the
        // inertia correctly or say that it cannot — never report a wrong count.
        var h = cert.Hessian;
        bool correct = h.Positive == m && h.Zero == n - m && h.Negative == 0;
        yield return new ClaimCheck("Certificate: the dense inertia is right or says it cannot decide", setting,
            h.Decided ? $"decided: {h.Positive} +, {h.Zero} 0, {h.Negative} −" : $"undecided (σmax/σmin(J) = {Sci(j.SigmaMax / j.SigmaAbove)}): {h.Note}",
            $"{m} +, {n - m} 0, 0 − or undecided", !h.Decided || correct, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// A point of M reached by Gauss–Newton from a random initialization (He init, seed 1): training data,
    /// width, and the projection's record. Such points are far better conditioned than constructed ones.
    /// </summary>
    public static (NetworkPoint Point, GaussNewtonResult Projection) TrainedPoint(Dataset data, int width, int seed)
    {
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(width, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed));
        using var map = new ResidualMap(model, data);
        var projection = GaussNewtonProjection.Project(map, new GaussNewtonOptions(OnManifoldTest.Threshold(map, 1e-12), MaxIterations: 40));
        return (new NetworkPoint(mlp, model.ToArray()), projection);
    }

    /// <summary>Proposition 2.3 by the dense method: iris (first 30 rows, one-hot ℓ = 3), width 40, a point of M reached by Gauss–Newton.</summary>
    public static ClaimCheck DenseInertia()
    {
        var watch = Stopwatch.StartNew();
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, _) = TrainedPoint(data, 40, seed: 1);
        using var model = point.ToModel();
        var cert = CertifyAt(model, data, new CertificateOptions(InertiaMethod.Dense));
        return InertiaCheck("Proposition 2.3: inertia of ∇²L on M (dense, all n eigenvalues)", data, point, cert, watch);
    }

    private static ClaimCheck InertiaCheck(string claim, Dataset data, NetworkPoint point, CertificateResult cert, Stopwatch watch)
    {
        int n = cert.N, m = cert.Constraints;
        var h = cert.Hessian;
        var positive = h.Eigenvalues.Where(v => v > 0).DefaultIfEmpty(0).Min();
        return new ClaimCheck(claim, Setting(data, (Mlp)point.Network) + ", point of M by Gauss–Newton",
            $"{h.Positive} +, {h.Zero} 0, {h.Negative} − (smallest + {Sci(positive)} vs tol {Sci(h.Tolerance)}{(h.Decided ? "" : ", undecided")}; max|H| {Sci(cert.MaxAbsResidual)})",
            $"{m} +, {n - m} 0, 0 −", cert.OnManifold && h.Decided && h.Positive == m && h.Zero == n - m && h.Negative == 0, watch.Elapsed.TotalSeconds);
    }

    /// <summary>Proposition 2.3 by the Gram route on a large network: digits (first 1000 rows, ℓ = 1), width 1000, a point of M reached by Gauss–Newton.</summary>
    public static ClaimCheck GramInertiaOnDigits(int rows = 1000)
    {
        var watch = Stopwatch.StartNew();
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.LastColumn).Take(rows);
        var (point, _) = TrainedPoint(data, rows, seed: 1);
        using var model = point.ToModel();
        var cert = CertifyAt(model, data, new CertificateOptions(InertiaMethod.Gram));
        return InertiaCheck("Proposition 2.3: inertia of ∇²L on M (gram, 2·eig(JJᵀ))", data, point, cert, watch);
    }

    /// <summary>
    /// A point of M where rank J &lt; ℓd (<see cref="RankDeficientPoint"/>: units whose output weights are
    /// zero). Perturbing the targets by |r| &lt; 1e−2 and moving onto the new M restores rank ℓd.
    /// </summary>
    public static ClaimCheck Perturbation()
    {
        var watch = Stopwatch.StartNew();
        var (data, point) = RankDeficientPoint();
        using var model = point.ToModel();
        var before = RankAt(model, data);
        var result = RegularValuePerturbation.Apply(model, data, 1e-2, seed: 1, tolerance: 1e-12);
        var after = CertifyAt(model, result.Perturbed, new CertificateOptions(InertiaMethod.Dense));
        int m = after.Constraints;
        return new ClaimCheck("Theorem 2.1: a perturbation of the targets makes 0 a regular value", Setting(data, (Mlp)point.Network) + ", output weights 0",
            $"rank {before.Rank} → {after.Jacobian.Rank} after |r| = {Sci(result.PerturbationNorm)}; {result.Projection.Steps} Gauss–Newton/LM steps took max|H| from {Sci(result.Projection.MaxResidualHistory[0])} to {Sci(after.MaxAbsResidual)}",
            $"rank < {m} → {m}, on the new M", before.Rank < m && after.Jacobian.Rank == m && after.Jacobian.Decided && after.OnManifold, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The rank-deficient point of <see cref="Perturbation"/>: 12 synthetic points in ℝ², 6 smooLU units with
    /// random incoming weights and zero output weights, output bias 0.3, all targets 0.3. The point is on
    /// M, but the hidden weights have zero gradient (v = 0), so rank J ≤ 6 + 1 = 7 &lt; ℓd = 12.
    /// </summary>
    public static (Dataset Data, NetworkPoint Point) RankDeficientPoint()
    {
        var inputs = SyntheticData.Gaussian(12, 2, 1, seed: 5);
        var mlp = new Mlp(2, [new HiddenLayer(6, new SmooLU())], 1);
        var p = mlp.InitialParameters(seed: 5);
        var hidden = mlp.Layers[0];
        var rng = new Random(6);
        for (int k = 0; k < hidden.Out; k++)
        {
            p[hidden.BiasOffset + k] = 1.0 + rng.NextDouble();
        }
        var output = mlp.Layers[1];
        Array.Clear(p, output.WeightOffset, output.In);
        p[output.BiasOffset] = 0.3;
        var y = new double[12, 1];
        for (int i = 0; i < 12; i++)
        {
            y[i, 0] = 0.3;
        }
        return (inputs.WithTargets(y), new NetworkPoint(mlp, p));
    }

    /// <summary>The walk on M from the constructed iris point (ℓ = 3): 10 tangent steps of length 0.1.</summary>
    public static ClaimCheck Walk()
    {
        var watch = Stopwatch.StartNew();
        var data = Iris(oneHot: true);
        var built = Lemma33Interpolation.Construct(data, new ConstructionOptions(new SmooLU(), [data.Count], InputScaling.Standardize(data)));
        using var model = built.Point.ToModel();
        using var map = new ResidualMap(model, data);
        double tol = 1e-10;
        var walk = ManifoldWalk.Run(map, new WalkOptions(10, 0.1, Seed: 2, Tolerance: tol));
        double worst = walk.Steps.Max(s => s.MaxAbsResidual);
        int minRank = walk.Steps.Min(s => s.Rank);
        var end = walk.Steps[^1];
        return new ClaimCheck("Theorems 2.1/4.1: M is a manifold — a walk on it keeps L = 0", Setting(data, (Mlp)built.Point.Network),
            $"10 steps, ‖p − p₀‖ = {end.Displacement:0.000}, max|H| ≤ {Sci(worst)}, rank ≥ {minRank}",
            $"‖p − p₀‖ > 0, max|H| ≤ {Sci(tol)}, rank {map.Constraints}", walk.Status == SolverStatus.Converged && worst <= tol && minRank == map.Constraints && end.Displacement > 0.1,
            watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Introduction (against mode connectivity): two minima of iris (<see cref="ConnectionData"/>, standardized, width 16
    /// tanh), trained by Gauss–Newton from seeds 1 and 2, are joined by a certified path inside M
    /// (<see cref="ConnectMethod.Manifold"/>), while the straight line between them climbs.
    /// </summary>
    public static ClaimCheck ConnectedMinima()
    {
        var watch = Stopwatch.StartNew();
        var data = ConnectionData();
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(ConnectionWidth, new Tanh())], 1).WithScaling(InputScaling.Standardize(data));
        var a = TrainedMinimum(mlp, data, 1);
        var b = TrainedMinimum(mlp, data, 2);
        using var model = new NetworkModel(mlp, a);
        using var map = new ResidualMap(model, data);
        double tol = OnManifoldTest.Threshold(map, 1e-10);
        var options = new ConnectOptions(Tolerance: tol);
        var linear = PathConnection.Run(map, ConnectMethod.Linear, a, b, options);
        var path = PathConnection.Run(map, ConnectMethod.Manifold, a, b, options);
        var c = path.Certificate;
        return new ClaimCheck("Introduction: minima are joined inside M, not only by low-loss paths", Setting(data, mlp) + ", minima from seeds 1 and 2",
            $"{path.Path.Vertices.Count} vertices, max|H| ≤ {Sci(path.Measures.MaxAbsResidual)}, min σmin(J) {Sci(c?.MinSigmaMin ?? double.NaN)}, certified: {(path.Certified ? "yes" : "no")}; straight line: max L {Sci(linear.Measures.MaxLoss)}",
            $"a certified path, max|H| ≤ {Sci(tol)} at every measured point", path.Certified && path.Measures.MaxAbsResidual <= tol, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The data of <see cref="ConnectedMinima"/>: iris, every tenth row (d = 15), the species code as one regression target.
    /// A subset, so that the check takes seconds (a path of about 1100 vertices, 6 s): on all 149 rows the path needs a
    /// width of 64 or more and over a minute (README, "Paths between minima"); at width 32 it stops short of B.
    /// </summary>
    public static Dataset ConnectionData() =>
        DatasetLoader.Load("builtin:iris", TargetSpec.LastColumn).Subset(Enumerable.Range(0, 150).Where(i => i % 10 == 0));

    /// <summary>The hidden width of <see cref="ConnectedMinima"/>: 16 (n = 97 parameters for ℓd = 15 constraints).</summary>
    public const int ConnectionWidth = 16;

    /// <summary>A minimum of <paramref name="mlp"/> on <paramref name="data"/> by Gauss–Newton from the initialization of <paramref name="seed"/>.</summary>
    private static double[] TrainedMinimum(Mlp mlp, Dataset data, int seed)
    {
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed));
        using var map = new ResidualMap(model, data);
        using var optimizer = new Training.GaussNewton();
        return Training.Trainer.Run(map, optimizer, new Training.TrainingOptions(1000)).BestParameters;
    }

    private static ClaimCheck ResidualCheck(string claim, Dataset data, ConstructionResult built, Stopwatch watch)
    {
        var g = built.Diagnostics;
        return new ClaimCheck(claim, Setting(data, (Mlp)built.Point.Network),
            $"max|f(xᵢ) − yᵢ| = {Sci(g.MaxResidual)} (κ₁(A) {Sci(g.TriangularCondition)})", $"≤ {Sci(g.Goal)}", g.MeetsGoal, watch.Elapsed.TotalSeconds);
    }

    private static string Setting(Dataset data, Mlp mlp) => FoundationChecks.Setting(data, mlp);

    private static string Sci(double v) => v.ToString("0.0e+0", CultureInfo.InvariantCulture);

    /// <summary>The certificate at the model's point, with the map disposed afterwards.</summary>
    private static CertificateResult CertifyAt(IDifferentiableModel model, Dataset data, CertificateOptions options)
    {
        using var map = new ResidualMap(model, data);
        return Certificate.Compute(map, options);
    }

    /// <summary>The rank decision at the model's point, with the map disposed afterwards.</summary>
    private static RankDecision RankAt(IDifferentiableModel model, Dataset data)
    {
        using var map = new ResidualMap(model, data);
        return JacobianFactorization.RankAt(map);
    }
}
