using System.Diagnostics;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using LossLandscape.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>The manifold path (<see cref="ManifoldPath"/>): certified paths inside M, honest failures, the certificate's values.</summary>
public sealed class ManifoldPathTests(ITestOutputHelper output)
{
    /// <summary>The goal: at least 200 vertices on a path that reached B.</summary>
    private const int MinimumVertices = 200;

    /// <summary>Gauss–Newton steps to train a minimum of the small networks (they converge in well under 100; the budget is a cap).</summary>
    private const int TrainingSteps = 300;

    [Fact]
    public void Manifold_Path_Joins_A_To_Its_Permutation_Depth_One_Certified()
    {
        var (mlp, data) = Small([new HiddenLayer(8, new Tanh())]);
        var a = Minimum(mlp, data, seed: 1);
        var b = Permute(mlp, a, seed: 7);
        var result = Connect(mlp, data, a, b, "synthetic 3-8-1 tanh, A ↔ π(A)");
        AssertCertified(result, data);
    }

    [Fact]
    public void Manifold_Path_Joins_A_To_Its_Permutation_Depth_Two_Certified()
    {
        var (mlp, data) = Small([new HiddenLayer(6, new Tanh()), new HiddenLayer(5, new Tanh())]);
        var a = Minimum(mlp, data, seed: 1);
        var b = Permute(mlp, a, seed: 7);
        var result = Connect(mlp, data, a, b, "synthetic 3-6-5-1 tanh, A ↔ π(A)");
        AssertCertified(result, data);
    }

    /// <summary>
    /// Two independently trained minima (Gauss–Newton from seeds 1 and 2) of iris (every tenth row, the species code as one
    /// regression target, standardized, width 16 tanh): the claim row of <c>verify</c>. On all 149 rows at width 32 the path
    /// stops short of B (README, "Paths between minima"), which the path reports rather than hides.
    /// </summary>
    [Fact]
    public void Manifold_Path_Joins_Two_Trained_Minima_On_Iris_Certified()
    {
        var check = Reports.PaperVerification.ConnectedMinima();
        output.WriteLine($"{check.Setting}: {check.Measured} ({check.Seconds:0.0} s)");
        Assert.True(check.Pass, check.Measured);
    }

    [Fact]
    public void Endpoint_Off_M_Is_Refused_Before_The_Path_Starts()
    {
        var (mlp, data) = Small([new HiddenLayer(8, new Tanh())]);
        var a = Minimum(mlp, data, seed: 1);
        var off = (double[])a.Clone();
        off[0] += 1e-3;
        using var model = new NetworkModel(mlp, a);
        using var map = new ResidualMap(model, data);
        int before = JacobianFactorization.FactorizationsOnThisThread;
        var error = Assert.Throws<LandscapeInputException>(() => PathConnection.Run(map, ConnectMethod.Manifold, a, off, Options(data)));
        Assert.Contains("not on M", error.Message);
        Assert.Contains("train with Gauss–Newton", error.Message);
        Assert.Equal(before, JacobianFactorization.FactorizationsOnThisThread);
    }

    [Fact]
    public void Budget_Stop_Returns_A_Partial_Path_That_Says_So()
    {
        var (mlp, data) = Small([new HiddenLayer(8, new Tanh())]);
        var a = Minimum(mlp, data, seed: 1);
        var b = Permute(mlp, a, seed: 7);
        const int budget = 20;
        using var model = new NetworkModel(mlp, a);
        using var map = new ResidualMap(model, data);
        var result = PathConnection.Run(map, ConnectMethod.Manifold, a, b, Options(data) with { MaxEvaluations = budget });
        output.WriteLine($"{result.Status}: {result.Detail}");
        Assert.NotEqual(SolverStatus.Converged, result.Status);
        Assert.Contains("budget", result.Detail);
        var certificate = result.Certificate!;
        Assert.False(certificate.ReachedEnd);
        Assert.False(certificate.Holds);
        Assert.False(result.Certified);
        Assert.True(certificate.Progress is > 0 and < 1, $"progress {certificate.Progress}");
        Assert.True(result.Evaluations.Jacobian <= budget, $"{result.Evaluations.Jacobian} factorizations");
        // The partial path runs from A to its last certified vertex, which is not B.
        Assert.Equal(a, result.Path.Vertices[0].Parameters);
        Assert.NotEqual(b, result.Path.Vertices[^1].Parameters);
        Assert.All(certificate.Segments, s => Assert.True(s.Holds));
        Assert.Equal(result.Path.Vertices.Count - 1, certificate.Segments.Count);
        Assert.Equal(model.ToArray(), a);
    }

    [Fact]
    public void Certificate_Values_Agree_With_An_Independent_Recomputation()
    {
        var (mlp, data) = Small([new HiddenLayer(8, new Tanh())]);
        var a = Minimum(mlp, data, seed: 1);
        var b = Permute(mlp, a, seed: 7);
        using var model = new NetworkModel(mlp, a);
        using var map = new ResidualMap(model, data);
        var result = PathConnection.Run(map, ConnectMethod.Manifold, a, b, Options(data));
        var certificate = result.Certificate!;
        Assert.True(certificate.Holds, result.Detail);
        var vertices = result.Path.Vertices;
        Assert.Equal(vertices.Count - 1, certificate.Segments.Count);
        Assert.Equal(b, vertices[^1].Parameters);
        // t by arc length of the polygon through the vertices.
        double total = certificate.Segments.Sum(s => s.Length);
        double cumulative = 0;
        for (int k = 0; k < certificate.Segments.Count; k++)
        {
            var segment = certificate.Segments[k];
            Assert.Equal(k, segment.Index);
            Assert.Equal(ConnectingPath.Distance(vertices[k].Parameters, vertices[k + 1].Parameters), segment.Length, Tolerances.ExactAgreement);
            cumulative += segment.Length;
            Assert.Equal(cumulative / total, vertices[k + 1].T, Tolerances.ExactAgreement);
        }
        Assert.True(certificate.MinSigmaMin > 0);
        Assert.Equal(certificate.Segments.Min(s => Math.Min(s.SigmaMinStart, s.SigmaMinEnd)), certificate.MinSigmaMin);
        foreach (int k in new[] { 0, certificate.Segments.Count / 2, certificate.Segments.Count - 1 })
        {
            var segment = certificate.Segments[k];
            double t0 = vertices[k].T, t1 = vertices[k + 1].T;
            // Vertex: max|H| by a fresh forward pass, σ_ℓd by a fresh factorization.
            double vertexMax = Math.Max(MaxAbsResidual(map, vertices[k].Parameters), MaxAbsResidual(map, vertices[k + 1].Parameters));
            Assert.Equal(vertexMax, segment.VertexMaxAbsResidual, Tolerances.RecomputedValue * Math.Max(vertexMax, 1e-300) + 1e-300);
            ParameterVector.Set(map.Model, tensor(vertices[k].Parameters, dtype: float64));
            var rank = JacobianFactorization.RankAt(map);
            Assert.True(rank.FullRowRank && rank.Decided);
            Assert.Equal(rank.SigmaMin, segment.SigmaMinStart, Tolerances.RecomputedValue * rank.SigmaMin);
            // The midpoint sample (j = 5), as the measurement asks for it: on M, and on the straight chord it is the projection of.
            var mid = result.Path.At(t0 + (5 * (t1 - t0) / 10));
            var chord = vertices[k].Parameters.Zip(vertices[k + 1].Parameters, (x, y) => x + (0.5 * (y - x))).ToArray();
            double onM = MaxAbsResidual(map, mid), straight = MaxAbsResidual(map, chord), moved = ConnectingPath.Distance(mid, chord);
            output.WriteLine($"segment {k}: length {segment.Length:G3}, projected max|H| {onM:G3} ≤ {segment.ChordMaxAbsResidual:G3}, straight {straight:G3} ≤ {segment.StraightChordMaxAbsResidual:G3}, moved {moved:G3} ≤ {segment.MaxProjectionDistance:G3}");
            Assert.True(onM <= certificate.Tolerance);
            Assert.True(onM <= segment.ChordMaxAbsResidual * (1 + Tolerances.RecomputedValue));
            Assert.True(straight <= segment.StraightChordMaxAbsResidual * (1 + Tolerances.RecomputedValue));
            Assert.True(moved <= segment.MaxProjectionDistance * (1 + Tolerances.RecomputedValue));
            // The straight chord leaves M; its projection is a genuine move, second order in the length.
            Assert.True(straight > certificate.Tolerance, $"straight chord max|H| {straight:G3}");
            Assert.True(moved > 0 && moved <= ManifoldPath.MaxCorrectionRatio * segment.Length);
            // A point between samples is projected anew: on M too.
            Assert.True(MaxAbsResidual(map, result.Path.At(t0 + (0.37 * (t1 - t0)))) <= certificate.Tolerance);
        }
        // The common measurement agrees with the certificate at every vertex and sample.
        Assert.True(result.Measures.MaxAbsResidual <= certificate.Segments.Max(s => Math.Max(s.VertexMaxAbsResidual, s.ChordMaxAbsResidual)) * (1 + Tolerances.RecomputedValue)
            || result.Measures.MaxAbsResidual <= certificate.Tolerance);
    }

    // ── Helpers ──────────────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Small synthetic data (<see cref="Cases.Data"/>: 12 points in ℝ³, one target) for the checks that need a full path but
    /// not a real dataset: J is 12 × n, so a path of a few hundred vertices takes about a second.
    /// </summary>
    private static (Mlp Mlp, Dataset Data) Small(IReadOnlyList<HiddenLayer> hidden)
    {
        var data = Cases.Data(12, 3, 1, seed: 3);
        return (new Mlp(data.InputDim, hidden, 1), data);
    }

    private static ConnectOptions Options(Dataset data) => new(Tolerance: Tolerances.OnManifold * Math.Max(1, data.MaxAbsTarget()));

    /// <summary>A minimum on M: Gauss–Newton from the seed's initialization.</summary>
    private double[] Minimum(Mlp mlp, Dataset data, int seed)
    {
        using var model = new NetworkModel(mlp, mlp.InitialParameters(seed));
        using var map = new ResidualMap(model, data);
        using var optimizer = new GaussNewton();
        var run = Trainer.Run(map, optimizer, new TrainingOptions(TrainingSteps));
        output.WriteLine($"seed {seed}: L = {run.BestLoss:G3} after {run.Steps} steps ({run.Seconds:0.00} s)");
        Assert.True(run.BestLoss <= Tolerances.ZeroLoss, $"seed {seed}: L = {run.BestLoss:G3}");
        return run.BestParameters;
    }

    /// <summary>π(θ) for a random permutation π of every hidden layer's units (<see cref="UnitPermutation"/>): the same function, on M when θ is.</summary>
    private static double[] Permute(Mlp mlp, double[] theta, int seed) => UnitPermutation.Random(mlp, seed).Apply(mlp, theta);

    private ConnectionResult Connect(Mlp mlp, Dataset data, double[] a, double[] b, string name)
    {
        using var model = new NetworkModel(mlp, a);
        using var map = new ResidualMap(model, data);
        var clock = Stopwatch.StartNew();
        var result = PathConnection.Run(map, ConnectMethod.Manifold, a, b, Options(data));
        var c = result.Certificate!;
        output.WriteLine($"{name}: n = {mlp.ParameterCount}, ℓd = {map.Constraints}, ‖A − B‖ = {result.Measures.Distance:G4}; {result.Status}: {result.Detail}");
        output.WriteLine($"  vertices {result.Path.Vertices.Count}, Jacobian {result.Evaluations.Jacobian}, forward {result.Evaluations.Forward}, {clock.Elapsed.TotalSeconds:0.0} s; "
            + $"measured max|H| {result.Measures.MaxAbsResidual:G3}, max L {result.Measures.MaxLoss:G3}, length ratio {result.Measures.LengthRatio:G4}; "
            + $"min σ_ℓd {c.MinSigmaMin:G3}, max straight-chord max|H| {(c.Segments.Count > 0 ? c.Segments.Max(s => s.StraightChordMaxAbsResidual) : 0):G3}, "
            + $"max projection distance {(c.Segments.Count > 0 ? c.Segments.Max(s => s.MaxProjectionDistance) : 0):G3}; certified {result.Certified}");
        Assert.Equal(model.ToArray(), a);
        return result;
    }

    private static void AssertCertified(ConnectionResult result, Dataset data)
    {
        var certificate = result.Certificate!;
        Assert.True(certificate.Holds, result.Detail);
        Assert.True(result.Certified);
        Assert.True(certificate.ReachedEnd);
        Assert.Equal(SolverStatus.Converged, result.Status);
        Assert.Equal(0, certificate.IrregularVertices);
        Assert.True(result.Path.Vertices.Count >= MinimumVertices, $"{result.Path.Vertices.Count} vertices");
        Assert.Equal(PathInterpolation.Projected, result.Path.Interpolation);
        double tolerance = Tolerances.OnManifold * Math.Max(1, data.MaxAbsTarget());
        Assert.Equal(tolerance, certificate.Tolerance);
        // Every measured point (the P evenly spaced t and the 9 samples of every segment) is on M.
        Assert.All(result.Profile, p => Assert.True(p.MaxAbsResidual <= tolerance, $"t = {p.T}: max|H| = {p.MaxAbsResidual:G3}"));
        Assert.True(result.Profile.Count >= (PathEvaluation.InteriorPointsPerSegment + 1) * (result.Path.Vertices.Count - 1));
    }

    private static double MaxAbsResidual(ResidualMap map, double[] theta)
    {
        using var scope = NewDisposeScope();
        ParameterVector.Set(map.Model, tensor(theta, dtype: float64));
        return map.Residuals().abs().max().item<double>();
    }
}
