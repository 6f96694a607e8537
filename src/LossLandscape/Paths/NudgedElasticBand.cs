using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>What <see cref="NudgedElasticBand.Run"/> produced.</summary>
/// <param name="Pivots">p₀ = A, …, p_N = B, equally spaced along the chain.</param>
/// <param name="Path">The polygonal path through the pivots, t by arc length.</param>
/// <param name="Iterations">NEB iterations taken, over all cycles.</param>
/// <param name="Cycles">AutoNEB cycles begun.</param>
/// <param name="Inserted">Pivots inserted after the cycles.</param>
/// <param name="LearningRate">The step size.</param>
/// <param name="LambdaMax">λ̂ when the step size was derived from it, else null.</param>
/// <param name="Evaluations">Gradient evaluations (the pivots' gradients and the step size's Hessian-vector products) and forward evaluations (the endpoints and AutoNEB's chord checks).</param>
/// <param name="Status">Converged (the budget was spent), Diverged (a non-finite loss; the last finite pivots are kept) or Cancelled.</param>
/// <param name="Detail">The run in one line.</param>
public sealed record NebResult(IReadOnlyList<double[]> Pivots, ConnectingPath Path, int Iterations, int Cycles, int Inserted, double LearningRate, double? LambdaMax,
    EvaluationCounts Evaluations, SolverStatus Status, string Detail);

/// <summary>
/// The nudged elastic band with AutoNEB's pivot insertion (Draxler et al. 2018): a chain of pivots p₀ = A … p_N = B; each
/// iteration evaluates ∇L at the interior pivots, removes its component along the path's tangent τᵢ (Henkelman and
/// Jónsson's energy-weighted upwind tangent), steps the pivots along −(∇L − (∇L·τ)τ), then redistributes them to equal
/// spacing along the chain (an infinite spring constant). After each cycle of iterations, the loss is evaluated at 9
/// interior points of every chord, and new pivots are inserted where it rises most above the straight line between the
/// chord's two pivot losses.
/// </summary>
/// <remarks>
/// <para>Draxler, Veschgini, Salmhofer &amp; Hamprecht 2018, "Essentially No Barriers in Neural Network Energy Landscape",
/// ICML, §3 (NEB as a minimum-energy-path method, the spring force replaced by redistribution, AutoNEB's insertion of
/// pivots where the chord's loss exceeds the interpolation of its ends). Henkelman &amp; Jónsson 2000, "Improved tangent
/// estimate in the nudged elastic band method for finding minimum energy paths and saddle points", J. Chem. Phys. 113,
/// 9978, eqs. 8–11 (the tangent).</para>
/// <para>Choices: the chain starts with <see cref="InitialPivots"/> pivots on the straight line; a cycle is
/// <see cref="IterationsPerCycle"/> iterations; at most <see cref="InsertionsPerCycle"/> pivots are inserted after each cycle
/// (one per chord, in the chords of largest positive excess). The pivots move by heavy-ball steps (momentum 0.9, the
/// velocity reset at each cycle since insertion renumbers the pivots) with the step size of the trained curves:
/// <see cref="ConnectOptions.LearningRate"/> if given, else (1 − β)/λ̂. The budget counts gradient evaluations: the pivots'
/// gradients and the step size's Hessian-vector products (one each); the run stops when the next iteration would exceed
/// it, so it spends at most the budget and less by fewer than the interior pivots. The chord checks are forward
/// evaluations, counted apart.</para>
/// </remarks>
public static class NudgedElasticBand
{
    /// <summary>5 pivots (3 interior) to start: few enough that the first cycle is cheap, enough for the tangent to follow a bend in the middle.</summary>
    public const int InitialPivots = 5;

    /// <summary>100 iterations per cycle: with the default budget of 2000 the chain goes through about four cycles (5, 7, 9, 11 pivots).</summary>
    public const int IterationsPerCycle = 100;

    /// <summary>At most 2 new pivots per cycle: the chain doubles its resolution near the worst chords without spending the budget on pivots that low chords do not need.</summary>
    public const int InsertionsPerCycle = 2;

    /// <summary>
    /// Builds the chain and measures it (<see cref="PathEvaluation"/>); a run cancelled by the token of <paramref name="limits"/>
    /// keeps its chain, which is still measured. The model is restored to its point afterwards.
    /// </summary>
    public static ConnectionResult Connect(IResidualProblem map, double[] a, double[] b, ConnectOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        var clock = Stopwatch.StartNew();
        var neb = Run(map, a, b, options, limits);
        var (profile, measures) = PathEvaluation.Evaluate(map, neb.Path, b, options.Points, neb.Status == SolverStatus.Cancelled ? limits.WithoutCancellation() : limits);
        return new ConnectionResult(ConnectMethod.Neb, false, neb.Path, profile, measures, neb.Evaluations, clock.Elapsed.TotalSeconds, neb.Status, neb.Detail, null);
    }

    /// <summary>
    /// Runs AutoNEB with <see cref="ConnectOptions.MaxEvaluations"/> gradient evaluations, the token of <paramref name="limits"/>
    /// checked before each iteration (cancelling ends with <see cref="SolverStatus.Cancelled"/>). The model is restored to its point afterwards.
    /// </summary>
    /// <exception cref="LandscapeInputException">The budget is too small for the step-size estimate.</exception>
    public static NebResult Run(IResidualProblem map, double[] a, double[] b, ConnectOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        var saved = map.GetPoint();
        try
        {
            var counter = new EvaluationCounter();
            var pivots = Enumerable.Range(0, InitialPivots).Select(i => ConnectingPath.Lerp(a, b, (double)i / (InitialPivots - 1))).ToList();
            double lossA = PathEvaluation.Measure(map, a).Loss;
            double lossB = PathEvaluation.Measure(map, b).Loss;
            counter.Forward += 2;
            var step = TrainedPathSteps.Choose(map, a, b, options.LearningRate, options.MaxEvaluations, options.Seed, counter);
            var status = SolverStatus.Converged;
            int iterations = 0, cycles = 0, inserted = 0;
            bool stop = false;
            while (!stop && options.MaxEvaluations - counter.Gradient >= pivots.Count - 2)
            {
                cycles++;
                int interior = pivots.Count - 2;
                var velocity = Enumerable.Range(0, interior).Select(_ => new double[a.Length]).ToArray();
                for (int it = 0; it < IterationsPerCycle && options.MaxEvaluations - counter.Gradient >= interior; it++)
                {
                    if (limits.IsCancellationRequested)
                    {
                        status = SolverStatus.Cancelled;
                        stop = true;
                        break;
                    }
                    var losses = new double[pivots.Count];
                    losses[0] = lossA;
                    losses[^1] = lossB;
                    var gradients = new double[interior][];
                    bool finite = true;
                    for (int i = 1; i <= interior; i++)
                    {
                        (losses[i], gradients[i - 1]) = TrainedPathSteps.LossAndGradient(map, pivots[i]);
                        counter.Gradient++;
                        finite &= double.IsFinite(losses[i]) && TrainedPathSteps.AllFinite(gradients[i - 1]);
                    }
                    if (!finite)
                    {
                        status = SolverStatus.Diverged; // the pivots are those of the last finite iteration
                        stop = true;
                        break;
                    }
                    var moved = new List<double[]>(pivots.Count) { pivots[0] };
                    for (int i = 1; i <= interior; i++)
                    {
                        var tau = Tangent(pivots[i - 1], pivots[i], pivots[i + 1], losses[i - 1], losses[i], losses[i + 1]);
                        var g = gradients[i - 1];
                        double along = ConnectingPath.Dot(g, tau);
                        var v = velocity[i - 1];
                        var p = (double[])pivots[i].Clone();
                        for (int j = 0; j < p.Length; j++)
                        {
                            // The nudged force: the gradient perpendicular to the path, g − (g·τ)τ; heavy-ball step on it.
                            v[j] = (TrainedPathSteps.Momentum * v[j]) + (g[j] - (along * tau[j]));
                            p[j] -= step.LearningRate * v[j];
                        }
                        moved.Add(p);
                    }
                    moved.Add(pivots[^1]);
                    // Infinite spring constant: the pivots go back to equal spacing along the chain.
                    var spread = Redistribute(moved, moved.Count);
                    if (!spread.All(TrainedPathSteps.AllFinite))
                    {
                        status = SolverStatus.Diverged; // the step overflowed: the pivots before it are kept
                        stop = true;
                        break;
                    }
                    pivots = spread.ToList();
                    iterations++;
                }
                if (stop)
                {
                    break;
                }
                // AutoNEB: insert where the chord rises most above its pivots' interpolation, if the budget allows an iteration after.
                int room = (int)Math.Min(InsertionsPerCycle, options.MaxEvaluations - counter.Gradient - interior);
                if (room > 0)
                {
                    int added = Insert(map, pivots, lossA, lossB, room, counter);
                    inserted += added;
                }
            }
            var path = PolygonalPath.ByArcLength(pivots);
            string detail = FormattableString.Invariant(
                $"AutoNEB, {pivots.Count} pivots ({InitialPivots} + {inserted} inserted) after {iterations} iterations in {cycles} cycles of ≤ {IterationsPerCycle}, {counter.Gradient} gradient evaluations, {counter.Forward} forward; {step.Describe()}; momentum {TrainedPathSteps.Momentum}");
            return new NebResult(pivots, path, iterations, cycles, inserted, step.LearningRate, step.LambdaMax, counter.Snapshot(), status, detail);
        }
        finally
        {
            map.SetPoint(saved);
            saved.Dispose();
        }
    }

    /// <summary>
    /// Henkelman and Jónsson's tangent at pivot i (2000, eqs. 8–11), unit length: with τ⁺ = p_{i+1} − pᵢ, τ⁻ = pᵢ − p_{i−1},
    /// τ = τ⁺ if L_{i+1} &gt; Lᵢ &gt; L_{i−1}, τ = τ⁻ if L_{i+1} &lt; Lᵢ &lt; L_{i−1} (the neighbour uphill), and at an extremum
    /// of the loss along the chain the energy-weighted mixture τ = τ⁺ΔL_max + τ⁻ΔL_min if L_{i+1} &gt; L_{i−1}, else
    /// τ = τ⁺ΔL_min + τ⁻ΔL_max, with ΔL_max = max(|L_{i+1} − Lᵢ|, |L_{i−1} − Lᵢ|) and ΔL_min the min. A zero mixture
    /// (equal losses) falls back to the chord p_{i+1} − p_{i−1}.
    /// </summary>
    public static double[] Tangent(double[] previous, double[] current, double[] next, double lossPrevious, double loss, double lossNext)
    {
        ArgumentNullException.ThrowIfNull(previous);
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(next);
        double wPlus, wMinus;
        if (lossNext > loss && loss > lossPrevious)
        {
            (wPlus, wMinus) = (1, 0);
        }
        else if (lossNext < loss && loss < lossPrevious)
        {
            (wPlus, wMinus) = (0, 1);
        }
        else
        {
            double up = Math.Abs(lossNext - loss), down = Math.Abs(lossPrevious - loss);
            double max = Math.Max(up, down), min = Math.Min(up, down);
            (wPlus, wMinus) = lossNext > lossPrevious ? (max, min) : (min, max);
        }
        var tau = new double[current.Length];
        for (int j = 0; j < tau.Length; j++)
        {
            tau[j] = (wPlus * (next[j] - current[j])) + (wMinus * (current[j] - previous[j]));
        }
        double norm = Math.Sqrt(ConnectingPath.Dot(tau, tau));
        if (!(norm > 0))
        {
            for (int j = 0; j < tau.Length; j++)
            {
                tau[j] = next[j] - previous[j];
            }
            norm = Math.Sqrt(ConnectingPath.Dot(tau, tau));
            if (!(norm > 0))
            {
                return tau; // three coincident pivots: no direction along the path, nothing to remove
            }
        }
        for (int j = 0; j < tau.Length; j++)
        {
            tau[j] /= norm;
        }
        return tau;
    }

    /// <summary>
    /// <paramref name="count"/> points at equal arc length along the polygonal chain through <paramref name="points"/>:
    /// the j-th at arc length j·S/(count − 1), S the chain's length; the first and last are copies of the chain's ends.
    /// </summary>
    public static IReadOnlyList<double[]> Redistribute(IReadOnlyList<double[]> points, int count)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count < 2 || count < 2)
        {
            throw new ArgumentException("a chain has at least two points");
        }
        var cumulative = ConnectingPath.CumulativeLengths(points);
        double total = cumulative[^1];
        var result = new double[count][];
        result[0] = (double[])points[0].Clone();
        result[count - 1] = (double[])points[^1].Clone();
        int segment = 0;
        for (int j = 1; j < count - 1; j++)
        {
            double s = j * total / (count - 1);
            while (segment < points.Count - 2 && cumulative[segment + 1] < s)
            {
                segment++;
            }
            double length = cumulative[segment + 1] - cumulative[segment];
            double fraction = length > 0 ? Math.Clamp((s - cumulative[segment]) / length, 0, 1) : 0;
            result[j] = ConnectingPath.Lerp(points[segment], points[segment + 1], fraction);
        }
        return result;
    }

    /// <summary>
    /// AutoNEB's insertion: L at the interior pivots and at the 9 interior points of every chord (forward evaluations,
    /// counted); in each of the <paramref name="room"/> chords of largest positive excess max_s [L((1 − s)p_k + s p_{k+1})
    /// − ((1 − s)L_k + s L_{k+1})], a new pivot at the point where the excess is largest. Returns the number inserted.
    /// </summary>
    private static int Insert(IResidualProblem map, List<double[]> pivots, double lossA, double lossB, int room, EvaluationCounter counter)
    {
        var losses = new double[pivots.Count];
        losses[0] = lossA;
        losses[^1] = lossB;
        for (int i = 1; i < pivots.Count - 1; i++)
        {
            losses[i] = PathEvaluation.Measure(map, pivots[i]).Loss;
            counter.Forward++;
        }
        var candidates = new List<(int Chord, double Excess, double[] Point)>();
        for (int k = 0; k < pivots.Count - 1; k++)
        {
            double best = double.NegativeInfinity;
            double[]? where = null;
            for (int j = 1; j <= PathEvaluation.InteriorPointsPerSegment; j++)
            {
                double s = (double)j / (PathEvaluation.InteriorPointsPerSegment + 1);
                var point = ConnectingPath.Lerp(pivots[k], pivots[k + 1], s);
                double loss = PathEvaluation.Measure(map, point).Loss;
                counter.Forward++;
                double excess = loss - (((1 - s) * losses[k]) + (s * losses[k + 1]));
                if (excess > best || !double.IsFinite(loss))
                {
                    best = double.IsFinite(loss) ? excess : double.PositiveInfinity;
                    where = point;
                }
            }
            if (best > 0 && where is not null)
            {
                candidates.Add((k, best, where));
            }
        }
        // Insert from the last chord backwards so the earlier indices stay valid.
        var chosen = candidates.OrderByDescending(c => c.Excess).Take(room).OrderByDescending(c => c.Chord).ToList();
        foreach (var (chord, _, point) in chosen)
        {
            pivots.Insert(chord + 1, point);
        }
        return chosen.Count;
    }
}
