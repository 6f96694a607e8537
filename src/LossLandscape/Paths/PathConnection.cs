using System.Text.Json.Serialization;
using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>
/// Joins two minima A and B of the same network on the same data by each of the methods of the mode-connectivity
/// literature and by a path inside M, all measured the same way (<see cref="PathEvaluation"/>).
/// </summary>
/// <remarks>
/// The paper (Cooper, Introduction) sets the manifold of minima against mode connectivity: Garipov et al. (2018) and
/// Draxler et al. (2018) find 1-D paths of low loss between minima, while M = H⁻¹(0) is an (n − ℓd)-dimensional
/// manifold (Theorem 2.1). <see cref="ConnectMethod.Manifold"/> finds a path whose every measured point is on M.
/// </remarks>
public static class PathConnection
{
    /// <summary>
    /// Runs one method from <paramref name="a"/> to <paramref name="b"/> within <paramref name="limits"/> (the token stops it at
    /// its next step, and it returns what it has). The model is restored to its point afterwards.
    /// </summary>
    /// <exception cref="LandscapeInputException">An endpoint has the wrong length, the endpoints coincide, or (manifold) an endpoint is not on M.</exception>
    public static ConnectionResult Run(IResidualProblem map, ConnectMethod method, double[] a, double[] b, ConnectOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (method == ConnectMethod.Manifold)
        {
            map.LossFunction.RequireResidualSum("the path on M (the manifold method of connect)");
        }
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        CheckEndpoints(map, a, b, options);
        return method switch
        {
            ConnectMethod.Linear => Linear(map, a, b, options, limits),
            ConnectMethod.Bezier or ConnectMethod.Polychain => CurveTraining.Connect(map, method, a, b, options, limits),
            ConnectMethod.Neb => NudgedElasticBand.Connect(map, a, b, options, limits),
            ConnectMethod.Manifold => ManifoldPath.Connect(map, a, b, options, limits),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "no such method"),
        };
    }

    /// <summary>
    /// The whole comparison of <c>landscape connect</c>: checks that A and B are the same network, aligns B to A by
    /// weight matching when <paramref name="align"/> is set, refuses endpoints off M when a manifold path is asked for,
    /// then runs each method in turn on the same endpoints. The model is restored to its point afterwards.
    /// </summary>
    /// <param name="map">The residual map of the network at A on the data.</param>
    /// <param name="a">A (the map's network and point).</param>
    /// <param name="b">B: the same network, another point.</param>
    /// <param name="methods">The methods, run in this order.</param>
    /// <param name="options">The shared settings.</param>
    /// <param name="align">
    /// Whether to permute B's hidden units (or channels) to match A's first (<see cref="WeightMatching"/>; MLPs and sequential
    /// networks); B's batch-norm statistics need then match A's only after the permutation.
    /// </param>
    /// <param name="limits">
    /// The budget of the manifold path's factorizations; the token, which stops the running method at its next step (it
    /// returns what it has) and skips the rest; the method running reported.
    /// </param>
    /// <exception cref="LandscapeInputException">
    /// Different networks (after the alignment, when one is asked for), alignment of a DAG, an endpoint off M for a manifold path.
    /// </exception>
    public static ConnectionReport Connect(IResidualProblem map, NetworkPoint a, NetworkPoint b, IReadOnlyList<ConnectMethod> methods, ConnectOptions options, bool align = false,
        RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        var target = b.Parameters;
        WeightMatchingResult? alignment = null;
        if (align)
        {
            // A permutation moves the batch norms' running statistics with their channels: B may differ from A there before
            // the alignment, and π(B) must not after it (the paths are measured on A's network).
            alignment = WeightMatching.Align(a, b, options.Seed);
            EndpointCheck.RequireSameArchitecture(a, new NetworkPoint(alignment.AlignedNetwork, alignment.AlignedB), "A", "π(B)");
            target = alignment.AlignedB;
            if (a.Parameters.AsSpan().SequenceEqual(target))
            {
                // π(B) = A exactly: B is A with its hidden units permuted, and there is no path to find.
                return new ConnectionReport([], alignment, Identical: true, Cancelled: false);
            }
        }
        else
        {
            EndpointCheck.RequireSameArchitecture(a, b);
        }
        if (methods.Contains(ConnectMethod.Manifold))
        {
            RequireOnManifold(map, a.Parameters, target, options.Tolerance);
        }
        var results = new List<ConnectionResult>();
        foreach (var method in methods.Distinct())
        {
            if (limits.IsCancellationRequested)
            {
                break;
            }
            limits.Report(method.ToJsonName(), (double)results.Count / methods.Count);
            results.Add(Run(map, method, a.Parameters, target, options, limits.WithoutProgress()) with { Aligned = align });
        }
        limits.Report("done", 1);
        return new ConnectionReport(results, alignment, Identical: false, Cancelled: limits.IsCancellationRequested);
    }

    /// <summary>
    /// Refuses endpoints that are not on M (max|H| ≤ <paramref name="tolerance"/>) before a manifold path starts, naming
    /// how to get there.
    /// </summary>
    public static void RequireOnManifold(IResidualProblem map, double[] a, double[] b, double tolerance)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.LossFunction.RequireResidualSum("the path on M (the manifold method of connect)");
        var saved = map.GetPoint();
        try
        {
            foreach (var (name, point) in new[] { ("A", a), ("B", b) })
            {
                var (_, max) = PathEvaluation.Measure(map, point);
                if (!(max <= tolerance))
                {
                    throw new LandscapeInputException(FormattableString.Invariant(
                        $"endpoint {name} is not on M: max|H| = {max:G3} > {tolerance:G3}; a manifold path needs both endpoints on M (train with Gauss–Newton, or project the point onto M)"));
                }
            }
        }
        finally
        {
            map.SetPoint(saved);
            saved.Dispose();
        }
    }

    private static void CheckEndpoints(IResidualProblem map, double[] a, double[] b, ConnectOptions options)
    {
        if (a.Length != map.ParameterCount || b.Length != map.ParameterCount)
        {
            throw new LandscapeInputException($"the endpoints have {a.Length} and {b.Length} parameters, the model {map.ParameterCount}");
        }
        if (a.Zip(b).All(p => p.First == p.Second))
        {
            throw new LandscapeInputException("the two endpoints are the same point: there is no path to find");
        }
        if (options.Points < 2)
        {
            throw new LandscapeInputException($"a path is measured at at least 2 points, got {options.Points}");
        }
        if (options.MaxEvaluations < 1)
        {
            throw new LandscapeInputException($"the evaluation budget must be at least 1, got {options.MaxEvaluations}");
        }
        if (options.Bends < 3)
        {
            throw new LandscapeInputException($"a curve needs at least 3 bends (the endpoints and one trainable bend), got {options.Bends}");
        }
    }

    /// <summary>The straight line L((1 − t)A + tB): no evaluation beyond the measurement.</summary>
    private static ConnectionResult Linear(IResidualProblem map, double[] a, double[] b, ConnectOptions options, RunLimits limits)
    {
        var clock = Stopwatch.StartNew();
        var path = PolygonalPath.Line(a, b);
        var (profile, measures) = PathEvaluation.Evaluate(map, path, b, options.Points, limits);
        return new ConnectionResult(ConnectMethod.Linear, false, path, profile, measures, EvaluationCounts.None, clock.Elapsed.TotalSeconds,
            SolverStatus.Converged, null, null);
    }
}

/// <summary>What <see cref="PathConnection.Connect"/> did.</summary>
/// <param name="Results">One result per method, in the order run (fewer when cancelled).</param>
/// <param name="Alignment">The weight matching, when it ran.</param>
/// <param name="Identical">Whether weight matching mapped B onto A exactly (then no method ran: there is no path to find).</param>
/// <param name="Cancelled">Whether the cancellation token stopped the run (in JSON, <c>interrupted</c>).</param>
public sealed record ConnectionReport([property: JsonIgnore] IReadOnlyList<ConnectionResult> Results, WeightMatchingResult? Alignment, bool Identical,
    [property: JsonPropertyName("interrupted")] bool Cancelled)
{
    /// <summary>
    /// Whether every method converged and the manifold path, where one was built, is certified on M: the verdict of the run
    /// (the CLI's exit code 0 against 1). A path that some method did not finish, or a manifold path whose certificate fails,
    /// is no connection in M.
    /// </summary>
    [JsonIgnore]
    public bool Connected => Results.All(r => r.Status == SolverStatus.Converged && (r.Method != ConnectMethod.Manifold || r.Certified));
}
