using LossLandscape.Problem;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>
/// A path inside M = H⁻¹(0) from A to B (both on M), built by predictor–corrector continuation and certified segment by
/// segment (<see cref="ConnectMethod.Manifold"/>).
/// </summary>
/// <remarks>
/// <para><b>Continuation</b> (Allgower &amp; Georg, Introduction to Numerical Continuation Methods, 1990, ch. 2–3). At a
/// vertex p, J(p) is factored once (<see cref="JacobianFactorization"/>). The predictor follows the chord direction
/// projected onto the tangent space, τ = Π(B − p) with Π the projection onto ker J(p), to q = p + h·τ/‖τ‖,
/// h = min(step, ‖B − p‖); the corrector is the retraction R (chord steps p ← p − J(p)⁺H(p) with J(p) frozen, Gauss–Newton
/// where they stall: the same retraction as <see cref="ManifoldWalk"/>). The step is accepted when R converges to the
/// tolerance, moves the point by at most <see cref="MaxCorrectionRatio"/>·h, brings it closer to B, the 9 interior
/// points of the new segment retract the same way, and the new vertex is a regular point (rank J = ℓd, decided across its
/// gap, <see cref="RankDecision.Decided"/>). Otherwise h is halved (<see cref="StepShrink"/>), down to the floor
/// <see cref="MinStepFraction"/>·‖A − B‖; after an accepted step it grows by <see cref="StepGrowth"/> up to
/// <see cref="MaxStepFraction"/>·‖A − B‖. When ‖B − p‖ ≤ h the last segment p → B is tried and B (its exact parameters)
/// is appended. If τ vanishes while B is far (B − p normal to M: a critical point of the distance to B on M) the path
/// stops as <see cref="SolverStatus.Stalled"/>.</para>
/// <para><b>Global strategy.</b> The first piece from A aims in turn at the points of an AutoNEB path (waypoints, see
/// <c>Waypoints</c>) and then at B. If it stops short at p, a piece from B aims at p through the projection onto M of the
/// midpoint of B and p; then one from p towards the new tip of B's side, and so on (<see cref="MaxRounds"/> pieces),
/// until one reaches the other side's tip; B's side is reversed and joined there. On iris (width 64) the piece from A
/// stopped at 95 % of the way and four more pieces closed the gap.</para>
/// <para><b>The path between vertices</b> is the chord projected onto M, γ(s) = R((1 − s)vₖ + s·vₖ₊₁) with J frozen at vₖ
/// (<see cref="ProjectedPath"/>), not the straight chord: on a curved M a chord of length h leaves M by about κh²/8 (κ the
/// normal curvature), which at the steps used here is far above the tolerance.</para>
/// <para><b>What the certificate proves.</b> Every vertex, and every one of the 9 interior samples s = j/10 of every
/// segment's projected curve, has max|H| ≤ the tolerance, evaluated by a forward pass at exactly the point the path
/// returns there; and every vertex is a regular point of H (rank J = ℓd, decided across its gap as <c>certify</c>
/// decides it), so near each vertex M is a smooth (n − ℓd)-dimensional manifold. <b>What it does not prove.</b> Nothing
/// is evaluated between the samples: that γ stays on M there rests on the continuity of R in the tubular neighbourhood
/// of M (R is the identity on M and continuous near a regular point), with the per-segment projection distances
/// (<see cref="PathSegmentCertificate.MaxProjectionDistance"/>, second order in the segment's length) reported as the
/// evidence that R stays on one sheet of M along the segment. Nothing is claimed for the straight chord between
/// vertices: its max|H| is reported (<see cref="PathSegmentCertificate.StraightChordMaxAbsResidual"/>) so that a reader
/// of the vertex list knows how far linear interpolation between them leaves M.</para>
/// </remarks>
public static class ManifoldPath
{
    /// <summary>
    /// The largest step: ‖A − B‖/250. Every accepted step moves the point by at most (1 + <see cref="MaxCorrectionRatio"/>)·h,
    /// so a path that reaches B has at least 250/1.1 ≈ 227 segments: the issue's goal of ≥ 200 vertices, with a margin.
    /// </summary>
    public const double MaxStepFraction = 1.0 / 250;

    /// <summary>
    /// The step floor: 1e−6·‖A − B‖. Chosen: below it a path of ≥ 10⁶ steps would be needed to cross the same distance,
    /// so a check that still fails there is a genuine obstruction (a rank drop, a fold of M), not a step too long.
    /// </summary>
    public const double MinStepFraction = 1e-6;

    /// <summary>The growth of h after an accepted step: 1.5, a common continuation choice (Allgower &amp; Georg, §6.1), cautious enough that a step rejected at h is not retried at once at 2h.</summary>
    public const double StepGrowth = 1.5;

    /// <summary>The reduction of h after a rejected step: ½ (step halving, as the issue specifies).</summary>
    public const double StepShrink = 0.5;

    /// <summary>
    /// The largest move a retraction may make, relative to the step h (predictor) or the segment's length (interior
    /// points): 0.1. On a regular sheet the move is second order, about κh²/2 (κh²/8 for a chord's midpoint); a move of a
    /// tenth of the step means the linearization at the segment's start no longer describes M there, and R may land on
    /// another sheet.
    /// </summary>
    public const double MaxCorrectionRatio = 0.1;

    /// <summary>
    /// The retraction runs to 1e−2 of the certificate's tolerance: a point that only just meets the tolerance leaves L at
    /// ℓd·tol² (2e−19 at tol = 1e−10), above the issue's goal max L ≤ 1e−20·max(1, max|y|)²; one more chord step costs one
    /// forward pass, and 1e−12·max(1, max|y|) is still far above the float64 rounding of H (a few ε·max|y|).
    /// </summary>
    public const double RetractionMargin = 1e-2;

    /// <summary>
    /// The path stalls when ‖Π(B − p)‖ ≤ 1e−6·‖B − p‖: B − p is normal to M to six digits, p is a critical point of the
    /// distance to B on M, and the predictor has no direction. Chosen well above the rounding of Π (about 1e−12 relative on
    /// the SVD route, 1e−7·κ on the Gram route's worst case) yet so small that any progress left is negligible.
    /// </summary>
    public const double StallRatio = 1e-6;

    /// <summary>
    /// Builds the manifold path from <paramref name="a"/> to <paramref name="b"/>, certifies it and measures it
    /// (<see cref="PathEvaluation"/>). The model is restored to its point afterwards.
    /// </summary>
    /// <param name="map">The residual map; its model's point is moved and restored.</param>
    /// <param name="a">A, on M.</param>
    /// <param name="b">B, on M.</param>
    /// <param name="options">Tolerance (on max|H|, absolute), MaxEvaluations (Jacobian factorizations), Points.</param>
    /// <param name="limits">The budget of the factorizations of J; the token, checked at every step: a cancelled path ends with <see cref="SolverStatus.Cancelled"/>.</param>
    /// <exception cref="LandscapeInputException">An endpoint is not on M (<see cref="PathConnection.RequireOnManifold"/>).</exception>
    /// <exception cref="MemoryBudgetExceededException">Two factorizations of J (the frozen one and a fallback's) do not fit the memory budget.</exception>
    public static ConnectionResult Connect(IResidualProblem map, double[] a, double[] b, ConnectOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        PathConnection.RequireOnManifold(map, a, b, options.Tolerance);
        var route = JacobianFactorization.ChooseRoute(map, limits);
        // Live at once: the factorization at the segment's start and, during a fallback retraction or the check of a new
        // vertex, a second one.
        limits.Require($"the manifold path (J is {map.Constraints} × {map.ParameterCount})", checked(2 * JacobianFactorization.RequiredBytes(map, route)),
            $"use a subset of the data (ℓd = {map.Constraints})", BudgetRemedy.Rows);
        var clock = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var saved = map.GetPoint();
        try
        {
            var build = Rounds(map, a, b, options, route, limits);
            var path = new ProjectedPath(ArcLengthVertices(build.Points), map, RetractionMargin * options.Tolerance, limits, build.Samples);
            var certificate = Certify(build, options.Tolerance, a, b);
            try
            {
                var (profile, measures) = PathEvaluation.Evaluate(map, path, b, options.Points, limits);
                return new ConnectionResult(ConnectMethod.Manifold, false, path, profile, measures, build.Counter.Snapshot(), clock.Elapsed.TotalSeconds,
                    build.Status, build.Detail, certificate);
            }
            finally
            {
                path.Dispose();
            }
        }
        finally
        {
            map.SetPoint(saved);
        }
    }

    /// <summary>A vertex's checks: max|H| there, σ_ℓd(J) and whether rank J = ℓd was decided.</summary>
    private sealed record VertexCheck(double MaxAbsResidual, double SigmaMin, bool Regular);

    /// <summary>A segment's checks (its index and vertex values are filled in by <see cref="Certify"/>).</summary>
    private sealed record SegmentCheck(double Length, double ProjectedMaxAbsResidual, double StraightMaxAbsResidual, double MaxProjectionDistance);

    private sealed record Construction(List<double[]> Points, List<VertexCheck> VertexChecks, List<SegmentCheck> Segments,
        Dictionary<(int Segment, int Sample), double[]> Samples, bool ReachedEnd, SolverStatus Status, string Detail, EvaluationCounter Counter)
    {
        /// <summary>How the first piece ended (kept through <see cref="Append"/>).</summary>
        public string FirstDetail { get; init; } = Detail;
    }

    /// <summary>The 9 interior samples of a trial segment p → q, projected with J frozen at p.</summary>
    private sealed record SegmentTrial(SegmentCheck Check, double[][] Projected, string? Failure);

    /// <summary>
    /// The path from both ends: a continuation from A towards B (guided by waypoints); if it stops short at p, one from B
    /// towards p; if that stops short at q, one from p towards q; and so on, up to <see cref="MaxRounds"/> pieces or the
    /// budget, until a piece reaches the other's tip. The pieces from B's side are reversed and joined at the meeting point.
    /// A stop where B − p is normal to M (a critical point of the distance to B) is rarely one where B's side is also
    /// stuck, so the other end often gets past it.
    /// </summary>
    private static Construction Rounds(IResidualProblem map, double[] a, double[] b, ConnectOptions options, JacobianRoute route, RunLimits limits)
    {
        var counter = new EvaluationCounter();
        var fromA = Build(map, a, b, options, route, counter, guided: true, limits);
        if (fromA.ReachedEnd || fromA.Status is SolverStatus.Cancelled or SolverStatus.Breakdown)
        {
            return fromA;
        }
        var fromB = (Construction?)null;
        for (int round = 1; round < MaxRounds && counter.Jacobian < options.MaxEvaluations && !limits.IsCancellationRequested; round++)
        {
            bool fromBSide = round % 2 == 1;
            var start = fromBSide ? (fromB?.Points[^1] ?? b) : fromA.Points[^1];
            var goal = fromBSide ? fromA.Points[^1] : (fromB?.Points[^1] ?? b);
            var via = Midpoint(map, start, goal, options, route, counter);
            var piece = Build(map, start, goal, options, route, counter, guided: false, limits, via);
            if (fromBSide)
            {
                fromB = fromB is null ? piece : Append(fromB, piece);
            }
            else
            {
                fromA = Append(fromA, piece);
            }
            if (piece.ReachedEnd)
            {
                var joined = fromB is null ? fromA : Append(fromA, Reverse(fromB));
                return joined with
                {
                    ReachedEnd = true,
                    Status = SolverStatus.Converged,
                    Detail = F($"reached B in {joined.Segments.Count} segments, in {round + 1} pieces from both ends (the first from A stopped: {fromA.FirstDetail})"),
                };
            }
            if (piece.Status is SolverStatus.Cancelled or SolverStatus.Breakdown)
            {
                break;
            }
        }
        return fromA with { Detail = F($"{fromA.FirstDetail}; B's side: {fromB?.Detail ?? "not tried"}") };
    }

    /// <summary>Pieces of a path from both ends: 6, three from each side.</summary>
    public const int MaxRounds = 6;

    /// <summary>The piece <paramref name="next"/>, which starts at <paramref name="first"/>'s last vertex, appended to it.</summary>
    private static Construction Append(Construction first, Construction next, bool dropFirst = true)
    {
        // next's first vertex is first's last (the same point, checked twice): keep one.
        int offset = first.Segments.Count;
        var points = first.Points.Concat(next.Points.Skip(dropFirst ? 1 : 0)).ToList();
        var checks = first.VertexChecks.Concat(next.VertexChecks.Skip(dropFirst ? 1 : 0)).ToList();
        var segments = first.Segments.Concat(next.Segments).ToList();
        var samples = new Dictionary<(int Segment, int Sample), double[]>(first.Samples);
        foreach (var ((k, j), x) in next.Samples)
        {
            samples[(k + offset, j)] = x;
        }
        return new Construction(points, checks, segments, samples, next.ReachedEnd, next.Status, next.Detail, first.Counter) { FirstDetail = first.FirstDetail };
    }

    /// <summary>The piece run backwards: vertices, segments and samples (s ↦ 1 − s) in the opposite order.</summary>
    private static Construction Reverse(Construction piece)
    {
        int count = piece.Segments.Count;
        var samples = new Dictionary<(int Segment, int Sample), double[]>();
        foreach (var ((k, j), x) in piece.Samples)
        {
            samples[(count - 1 - k, PathEvaluation.InteriorPointsPerSegment + 1 - j)] = x;
        }
        return piece with
        {
            Points = Enumerable.Reverse(piece.Points).ToList(),
            VertexChecks = Enumerable.Reverse(piece.VertexChecks).ToList(),
            Segments = Enumerable.Reverse(piece.Segments).ToList(),
            Samples = samples,
        };
    }

    /// <summary>
    /// The midpoint of the two tips projected onto M by Gauss–Newton (<see cref="GaussNewtonProjection"/>, at most
    /// <see cref="MidpointProjectionSteps"/> steps), as a waypoint between them; null if the projection did not converge.
    /// Two tips that stopped facing each other (their chord normal to M at both) are often on two folds of M that the
    /// projection of the point between them joins.
    /// </summary>
    private static double[]? Midpoint(IResidualProblem map, double[] p, double[] q, ConnectOptions options, JacobianRoute route, EvaluationCounter counter)
    {
        using var scope = NewDisposeScope();
        var middle = new double[p.Length];
        for (int i = 0; i < middle.Length; i++)
        {
            middle[i] = 0.5 * (p[i] + q[i]);
        }
        map.SetPoint(tensor(middle, dtype: float64));
        var projection = GaussNewtonProjection.ProjectBy(map, new GaussNewtonOptions(RetractionMargin * options.Tolerance, MidpointProjectionSteps), route);
        counter.Jacobian += projection.Factorizations;
        counter.Forward += projection.Steps + 1;
        return projection.Status == SolverStatus.Converged ? map.GetPoint().data<double>().ToArray() : null;
    }

    /// <summary>Gauss–Newton steps of the midpoint's projection: 100, enough for the trained minima here to converge from a random start.</summary>
    private const int MidpointProjectionSteps = 100;

    private static Construction Build(IResidualProblem map, double[] a, double[] b, ConnectOptions options, JacobianRoute route, EvaluationCounter counter, bool guided,
        RunLimits limits, double[]? via = null)
    {
        var targets = guided ? Waypoints(map, a, b, options, counter, limits) : via is null ? [b] : [via, b];
        int targetIndex = 0;
        var target = targets[0];
        int skipped = 0;
        var points = new List<double[]> { (double[])a.Clone() };
        var vertexChecks = new List<VertexCheck>();
        var segments = new List<SegmentCheck>();
        var samples = new Dictionary<(int, int), double[]>();
        double total = ConnectingPath.Distance(a, b);
        double hMax = MaxStepFraction * total, hMin = MinStepFraction * total;
        double h = hMax;

        double maxA = PathEvaluation.Measure(map, a).MaxAbsResidual;
        counter.Forward++;
        var factors = JacobianFactorization.Factor(map, route);
        counter.Jacobian++;
        vertexChecks.Add(new VertexCheck(maxA, factors.Rank.SigmaMin, IsRegular(factors.Rank)));
        try
        {
            if (!vertexChecks[0].Regular)
            {
                return Stop(SolverStatus.Breakdown, $"A is not a regular point: {DescribeRank(factors.Rank)}");
            }
            var p = points[0];
            double distance = ConnectingPath.Distance(target, p);
            string? lastFailure = null;
            while (true)
            {
                // A waypoint is passed once the path is within a step of it (it guides the path, it is not a vertex).
                while (targetIndex < targets.Count - 1 && distance <= Math.Max(h, hMax))
                {
                    target = targets[++targetIndex];
                    distance = ConnectingPath.Distance(target, p);
                }
                if (limits.IsCancellationRequested)
                {
                    return Stop(SolverStatus.Cancelled, $"cancelled {Where()}");
                }
                if (counter.Jacobian >= options.MaxEvaluations)
                {
                    return Stop(SolverStatus.StoppedWithoutConvergence, $"budget of {options.MaxEvaluations} Jacobian factorizations spent {Where()}");
                }
                bool final = targetIndex == targets.Count - 1 && distance <= h;
                double[] candidate;
                double candidateMax;
                if (final)
                {
                    candidate = b;
                    candidateMax = double.NaN; // measured below, with the rank
                }
                else
                {
                    var predicted = Predict(factors, p, target, distance, h);
                    if (predicted is null)
                    {
                        if (SkipWaypoint())
                        {
                            continue;
                        }
                        return Stop(SolverStatus.Stalled, $"stalled {Where()}: B − p is normal to M there (‖Π(B − p)‖ ≤ {StallRatio:G1}·‖B − p‖), a critical point of the distance to B on M");
                    }
                    var (q, qProjected, outcome) = Corrector(map, factors, route, options, predicted, counter);
                    double correction = ConnectingPath.Distance(q, qProjected);
                    double remaining = ConnectingPath.Distance(target, qProjected);
                    lastFailure = outcome.Status != SolverStatus.Converged
                        ? F($"the retraction of the predicted point did not converge (max|H| = {outcome.MaxAbsResidual:G3}, {outcome.Status})")
                        : correction > MaxCorrectionRatio * h
                            ? F($"the retraction moved {correction / h:G3}·h > {MaxCorrectionRatio}·h")
                            : !(remaining < distance) ? (targetIndex == targets.Count - 1 ? "the retracted point is no closer to B" : "the retracted point is no closer to the waypoint") : null;
                    if (lastFailure is not null)
                    {
                        // No closer to a waypoint: the nearest point of M to it is reached; aim at the next one.
                        if (!(remaining < distance) && outcome.Status == SolverStatus.Converged && correction <= MaxCorrectionRatio * h && SkipWaypoint())
                        {
                            continue;
                        }
                        if (!Shrink())
                        {
                            return Floor();
                        }
                        continue;
                    }
                    candidate = qProjected;
                    candidateMax = outcome.MaxAbsResidual;
                }
                var trial = TrySegment(map, factors, route, options, p, candidate, counter);
                if (trial.Failure is not null)
                {
                    lastFailure = trial.Failure;
                    if (!Shrink())
                    {
                        return Floor();
                    }
                    continue;
                }
                if (counter.Jacobian >= options.MaxEvaluations)
                {
                    return Stop(SolverStatus.StoppedWithoutConvergence, $"budget of {options.MaxEvaluations} Jacobian factorizations spent {Where()}");
                }
                double measured = PathEvaluation.Measure(map, candidate).MaxAbsResidual;
                counter.Forward++;
                candidateMax = final ? measured : Math.Max(candidateMax, measured);
                var next = JacobianFactorization.Factor(map, route);
                counter.Jacobian++;
                bool regular = IsRegular(next.Rank);
                if (!regular || !(candidateMax <= options.Tolerance))
                {
                    lastFailure = regular
                        ? F($"max|H| = {candidateMax:G3} at the new vertex")
                        : $"the new vertex is not a regular point: {DescribeRank(next.Rank)}";
                    next.Dispose();
                    if (final)
                    {
                        // B itself is checked only when the last segment reaches it: an irregular B cannot be reached.
                        return Stop(SolverStatus.Breakdown, $"B is not a regular point: {lastFailure}");
                    }
                    if (!Shrink())
                    {
                        return Floor();
                    }
                    continue;
                }
                int index = segments.Count;
                segments.Add(trial.Check);
                for (int j = 0; j < trial.Projected.Length; j++)
                {
                    samples[(index, j + 1)] = trial.Projected[j];
                }
                points.Add(final ? (double[])b.Clone() : candidate);
                vertexChecks.Add(new VertexCheck(candidateMax, next.Rank.SigmaMin, true));
                factors.Dispose();
                factors = next;
                p = points[^1];
                distance = ConnectingPath.Distance(target, p);
                lastFailure = null;
                if (final)
                {
                    return new Construction(points, vertexChecks, segments, samples, true, SolverStatus.Converged,
                        F($"reached B in {segments.Count} segments, guided by {targets.Count - 1} waypoints ({skipped} skipped)"), counter);
                }
                h = Math.Min(h * StepGrowth, hMax);
            }

            bool Shrink()
            {
                h *= StepShrink;
                return h >= hMin;
            }

            // A waypoint the path gets no closer to (the point of M nearest to it is reached) is passed: the path aims at the
            // next one, with the step it had. B is never passed.
            bool SkipWaypoint()
            {
                if (targetIndex >= targets.Count - 1)
                {
                    return false;
                }
                target = targets[++targetIndex];
                distance = ConnectingPath.Distance(target, p);
                skipped++;
                return true;
            }

            Construction Floor() => Stop(SolverStatus.StoppedWithoutConvergence,
                F($"step below the floor {MinStepFraction:G1}·‖A − B‖ {Where()}; the last attempt failed: {lastFailure}"));

            string Where()
            {
                double left = ConnectingPath.Distance(b, points[^1]);
                return F($"at progress {1 - (left / total):0.####} (‖B − p‖ = {left:G4} of ‖A − B‖ = {total:G4}, after {points.Count} vertices, aiming at waypoint {targetIndex + 1} of {targets.Count}, {skipped} skipped)");
            }
        }
        finally
        {
            factors.Dispose();
        }

        Construction Stop(SolverStatus status, string detail) =>
            new(points, vertexChecks, segments, samples, false, status, detail, counter);
    }

    /// <summary>
    /// The waypoints that guide the continuation: a low-loss path from A to B found by AutoNEB
    /// (<see cref="NudgedElasticBand"/>, with the same budget in gradient evaluations), its points at arc length k/K,
    /// k = 1 … K − 1, then B itself. Aiming at B alone follows the gradient flow of the distance to B on M, which stops at
    /// any critical point of that distance (B − p normal to M: measured on iris, two minima from seeds 1 and 2, 37–44 % of
    /// the way). Aiming in turn at the points of a low-loss path, which runs close to M, tracks the point of M nearest to a
    /// target that moves from A to B; a waypoint is passed when the path comes within a step of it or gets no closer to it
    /// (the nearest point of M to it is reached), and only B must be reached exactly.
    /// </summary>
    private static List<double[]> Waypoints(IResidualProblem map, double[] a, double[] b, ConnectOptions options, EvaluationCounter counter, RunLimits limits)
    {
        var neb = NudgedElasticBand.Run(map, a, b, options, limits);
        counter.Forward += neb.Evaluations.Forward;
        counter.Gradient += neb.Evaluations.Gradient;
        var targets = new List<double[]>();
        for (int k = 1; k < WaypointCount; k++)
        {
            targets.Add(neb.Path.At((double)k / WaypointCount));
        }
        targets.Add(b);
        return targets;
    }

    /// <summary>K = 100 waypoints: legs of about ‖A − B‖/100, under three of the largest steps (‖A − B‖/250) each.</summary>
    private const int WaypointCount = 100;

    /// <summary>q = p + h·τ/‖τ‖, τ = Π(B − p); null when ‖τ‖ ≤ <see cref="StallRatio"/>·‖B − p‖.</summary>
    private static double[]? Predict(JacobianFactorization factors, double[] p, double[] b, double distance, double h)
    {
        using var scope = NewDisposeScope();
        var start = tensor(p, dtype: float64);
        var tangent = factors.TangentProjection(tensor(b, dtype: float64) - start);
        double norm = tangent.norm().item<double>();
        if (!(norm > StallRatio * distance))
        {
            return null;
        }
        return start.Plus(tangent.Times(h / norm)).data<double>().ToArray();
    }

    /// <summary>R(q) with J frozen at the segment's start: (q, R(q), the retraction's outcome).</summary>
    private static (double[] Point, double[] Projected, RetractionOutcome Outcome) Corrector(IResidualProblem map, JacobianFactorization frozen, JacobianRoute route,
        ConnectOptions options, double[] point, EvaluationCounter counter)
    {
        using var scope = NewDisposeScope();
        map.SetPoint(tensor(point, dtype: float64));
        var outcome = ChordRetraction.Retract(map, frozen, route, RetractionMargin * options.Tolerance);
        counter.Forward += outcome.Forward;
        counter.Jacobian += outcome.Factorizations;
        return (point, map.GetPoint().data<double>().ToArray(), outcome);
    }

    /// <summary>
    /// The 9 interior samples cⱼ = (1 − j/10)p + (j/10)q of the trial segment: max|H| at cⱼ (the straight chord) and at
    /// R(cⱼ) (the projected chord), and ‖R(cⱼ) − cⱼ‖. A sample fails when R does not converge or moves it by more than
    /// <see cref="MaxCorrectionRatio"/>·‖q − p‖.
    /// </summary>
    private static SegmentTrial TrySegment(IResidualProblem map, JacobianFactorization frozen, JacobianRoute route, ConnectOptions options,
        double[] p, double[] q, EvaluationCounter counter)
    {
        double length = ConnectingPath.Distance(p, q);
        int count = PathEvaluation.InteriorPointsPerSegment;
        var projected = new double[count][];
        double straight = 0, onM = 0, moved = 0;
        for (int j = 1; j <= count; j++)
        {
            double s = (double)j / (count + 1);
            var chord = ConnectingPath.Lerp(p, q, s);
            double max = PathEvaluation.Measure(map, chord).MaxAbsResidual;
            counter.Forward++;
            straight = Math.Max(straight, max);
            var (_, r, outcome) = Corrector(map, frozen, route, options, chord, counter);
            double distance = ConnectingPath.Distance(chord, r);
            projected[j - 1] = r;
            onM = Math.Max(onM, outcome.MaxAbsResidual);
            moved = Math.Max(moved, distance);
            string? failure = outcome.Status != SolverStatus.Converged
                ? F($"the projection of chord sample s = {s} did not converge (max|H| = {outcome.MaxAbsResidual:G3}, {outcome.Status})")
                : distance > MaxCorrectionRatio * length
                    ? F($"the projection of chord sample s = {s} moved {distance / length:G3}·‖q − p‖ > {MaxCorrectionRatio}·‖q − p‖")
                    : null;
            if (failure is not null)
            {
                return new SegmentTrial(new SegmentCheck(length, onM, straight, moved), projected, failure);
            }
        }
        return new SegmentTrial(new SegmentCheck(length, onM, straight, moved), projected, null);
    }

    /// <summary>A regular point: rank J = ℓd, decided across its gap (the rule of <c>certify</c>).</summary>
    private static bool IsRegular(RankDecision rank) => rank.FullRowRank && rank.Decided;

    private static string DescribeRank(RankDecision rank) =>
        F($"rank J = {rank.Rank} of ℓd = {rank.Constraints}, {(rank.Decided ? "decided" : "not decided")} (σ_ℓd = {rank.SigmaMin:G3}, tolerance {rank.Tolerance:G3}, gap {rank.Gap:G3})");

    /// <summary>Vertices at t = arc length (<see cref="PolygonalPath.ArcLengthVertices"/>); a single point: [A, A], t = 0 and 1.</summary>
    private static List<PathVertex> ArcLengthVertices(List<double[]> points) =>
        points.Count == 1 ? [new PathVertex(0, points[0]), new PathVertex(1, (double[])points[0].Clone())] : PolygonalPath.ArcLengthVertices(points);

    private static ManifoldPathCertificate Certify(Construction build, double tolerance, double[] a, double[] b)
    {
        var v = build.VertexChecks;
        var segments = build.Segments.Select((s, k) =>
        {
            double vertexMax = Math.Max(v[k].MaxAbsResidual, v[k + 1].MaxAbsResidual);
            bool holds = vertexMax <= tolerance && s.ProjectedMaxAbsResidual <= tolerance && v[k].Regular && v[k + 1].Regular;
            return new PathSegmentCertificate(k, s.Length, vertexMax, s.ProjectedMaxAbsResidual, s.StraightMaxAbsResidual, v[k].SigmaMin, v[k + 1].SigmaMin,
                s.MaxProjectionDistance, holds);
        }).ToList();
        bool verticesHold = v.All(c => c.Regular && c.MaxAbsResidual <= tolerance);
        bool holds = build.ReachedEnd && segments.Count > 0 && verticesHold && segments.All(s => s.Holds);
        double progress = build.ReachedEnd ? 1 : 1 - (ConnectingPath.Distance(build.Points[^1], b) / ConnectingPath.Distance(a, b));
        return new ManifoldPathCertificate(tolerance, holds, build.ReachedEnd, progress, v.Count(c => !c.Regular), v.Min(c => c.SigmaMin), segments);
    }

    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
