using System.Text.Json.Serialization;
using LossLandscape.Problem;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>Evaluations a method spent building its path (the common measurement of <see cref="PathEvaluation"/> is not counted).</summary>
/// <param name="Forward">Evaluations of H (or L) alone.</param>
/// <param name="Gradient">Evaluations of ∇L (each also evaluates L).</param>
/// <param name="Jacobian">Evaluations of J = ∂H/∂p (each one factorization of J).</param>
public sealed record EvaluationCounts(long Forward, long Gradient, long Jacobian)
{
    /// <summary>No evaluations.</summary>
    public static EvaluationCounts None { get; } = new(0, 0, 0);
}

/// <summary>A running count of evaluations, kept by a method while it builds a path.</summary>
internal sealed class EvaluationCounter
{
    public long Forward;
    public long Gradient;
    public long Jacobian;

    public EvaluationCounts Snapshot() => new(Forward, Gradient, Jacobian);
}

/// <summary>One measured point of a path.</summary>
/// <param name="T">The path parameter.</param>
/// <param name="Loss">L(θ(t)).</param>
/// <param name="MaxAbsResidual">max_k |H_k(θ(t))|.</param>
/// <param name="IsVertex">Whether θ(t) is a vertex of the path (else a point of the grid or of a chord between vertices).</param>
public sealed record PathPoint(double T, double Loss, double MaxAbsResidual, bool IsVertex);

/// <summary>What every method reports, measured the same way (<see cref="PathEvaluation.Evaluate"/>).</summary>
/// <param name="LossA">L(A) = L(θ(0)).</param>
/// <param name="LossB">L(B): the loss at the target endpoint (not at the path's end if the path stopped short).</param>
/// <param name="MaxLoss">max L over the measured points.</param>
/// <param name="Barrier">max L − ½(L(A) + L(B)) (Ainsworth et al. 2022, "Git Re-Basin", §2: the loss barrier).</param>
/// <param name="MaxAbsResidual">max |H| over the measured points.</param>
/// <param name="Length">The path's length: Σ ‖θ(sᵢ₊₁) − θ(sᵢ)‖ over the measured points in order (exact for a polygonal path).</param>
/// <param name="Distance">‖A − B‖.</param>
/// <param name="LengthRatio">Length / ‖A − B‖ (≥ 1 for a path that reached B).</param>
/// <param name="Points">The number of measured points.</param>
public sealed record PathMeasures(double LossA, double LossB, double MaxLoss, double Barrier, double MaxAbsResidual, [property: JsonIgnore] double Length, [property: JsonIgnore] double Distance,
    double LengthRatio, int Points);

/// <summary>
/// The one measurement of a path, the same for every method: L and max|H| at the evenly spaced tᵢ = i/(P − 1),
/// i = 0…P − 1 (P = 61 by default, as Garipov et al. 2018 evaluate curves), and at the 9 interior points
/// t_k + j(t_{k+1} − t_k)/10, j = 1…9, of every segment between consecutive vertices (the dense check of AutoNEB,
/// Draxler et al. 2018), so that a barrier cannot hide between vertices.
/// </summary>
public static class PathEvaluation
{
    /// <summary>The default number of evenly spaced points: 61, as Garipov et al. (2018) evaluate their curves.</summary>
    public const int DefaultPoints = 61;

    /// <summary>Interior points per segment: 9, AutoNEB's dense check (Draxler et al. 2018, §3).</summary>
    public const int InteriorPointsPerSegment = 9;

    /// <summary>The parameters t measured on <paramref name="path"/>, sorted, with whether each is a vertex.</summary>
    public static IReadOnlyList<(double T, bool IsVertex)> Parameters(ConnectingPath path, int points)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (points < 2)
        {
            throw new LandscapeInputException($"a path is measured at ≥ 2 points, got {points}");
        }
        var ts = new SortedDictionary<double, bool>();
        void Add(double t, bool vertex) => ts[t] = (ts.TryGetValue(t, out bool v) && v) || vertex;
        for (int i = 0; i < points; i++)
        {
            Add(i == points - 1 ? 1.0 : (double)i / (points - 1), false);
        }
        var vertices = path.Vertices;
        for (int k = 0; k < vertices.Count; k++)
        {
            Add(vertices[k].T, true);
            if (k + 1 < vertices.Count)
            {
                double t0 = vertices[k].T, t1 = vertices[k + 1].T;
                for (int j = 1; j <= InteriorPointsPerSegment; j++)
                {
                    Add(t0 + (j * (t1 - t0) / (InteriorPointsPerSegment + 1)), false);
                }
            }
        }
        // Parameters closer than 1e−12 are one point (an evenly spaced tᵢ landing on a vertex or a chord point).
        var merged = new List<(double T, bool IsVertex)>();
        foreach (var (t, vertex) in ts)
        {
            if (merged.Count > 0 && t - merged[^1].T <= 1e-12)
            {
                merged[^1] = (merged[^1].T, merged[^1].IsVertex || vertex);
            }
            else
            {
                merged.Add((t, vertex));
            }
        }
        return merged;
    }

    /// <summary>
    /// Measures <paramref name="path"/> on the map's data. The model is restored to its point afterwards.
    /// </summary>
    /// <param name="map">The residual map; its model's point is moved to each θ(t) and restored.</param>
    /// <param name="path">The path.</param>
    /// <param name="target">B, the endpoint the path was built towards (its loss enters the barrier).</param>
    /// <param name="points">P, the number of evenly spaced points.</param>
    /// <param name="limits">The token, checked between points.</param>
    public static (IReadOnlyList<PathPoint> Profile, PathMeasures Measures) Evaluate(IResidualProblem map, ConnectingPath path, double[] target, int points = DefaultPoints, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(target);
        limits ??= RunLimits.Default;
        if (path.ParameterCount != map.ParameterCount || target.Length != map.ParameterCount)
        {
            throw new ArgumentException($"the path has {path.ParameterCount} parameters, B {target.Length}, the model {map.ParameterCount}");
        }
        using var scope = NewDisposeScope();
        var saved = map.GetPoint();
        try
        {
            var profile = new List<PathPoint>();
            double length = 0;
            double[]? previous = null;
            foreach (var (t, isVertex) in Parameters(path, points))
            {
                limits.ThrowIfCancellationRequested();
                var theta = path.At(t);
                var (loss, max) = Measure(map, theta);
                profile.Add(new PathPoint(t, loss, max, isVertex));
                if (previous is not null)
                {
                    length += ConnectingPath.Distance(previous, theta);
                }
                previous = theta;
            }
            double lossA = profile[0].Loss;
            double lossB = Measure(map, target).Loss;
            double maxLoss = profile.Max(p => p.Loss);
            double distance = ConnectingPath.Distance(path.Vertices[0].Parameters, target);
            var measures = new PathMeasures(lossA, lossB, maxLoss, maxLoss - (0.5 * (lossA + lossB)), profile.Max(p => p.MaxAbsResidual),
                length, distance, distance > 0 ? length / distance : double.NaN, profile.Count);
            return (profile, measures);
        }
        finally
        {
            map.SetPoint(saved);
        }
    }

    /// <summary>(L, max|H|) at θ, one forward pass; the model is left at θ.</summary>
    internal static (double Loss, double MaxAbsResidual) Measure(IResidualProblem map, double[] theta)
    {
        using var scope = NewDisposeScope();
        map.SetPoint(tensor(theta, dtype: float64));
        var h = map.Residuals();
        // The squared loss from the same pass as max|H| (LossFunction's one rule for Σ|H_k|^a); any other loss by its own pass.
        double loss = map.LossFunction.IsResidualSum ? map.LossFunction.OfResiduals(h).item<double>() : map.Loss();
        return (loss, h.abs().max().item<double>());
    }
}
