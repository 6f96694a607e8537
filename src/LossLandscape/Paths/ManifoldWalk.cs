using System.Text.Json.Serialization;
using LossLandscape.Problem;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>Settings of <see cref="ManifoldWalk"/>.</summary>
/// <param name="Steps">Number of steps.</param>
/// <param name="StepSize">Length of each tangent step ‖t‖.</param>
/// <param name="Seed">Seed of the random directions.</param>
/// <param name="Tolerance">Retraction tolerance on max|H| (absolute).</param>
/// <param name="Route">The route J is factored by; default <see cref="JacobianRoute.Auto"/>: <see cref="JacobianFactorization.ChooseRoute"/> under the memory budget.</param>
public sealed record WalkOptions(int Steps, double StepSize, int Seed, double Tolerance, JacobianRoute Route = JacobianRoute.Auto);

/// <summary>One recorded step.</summary>
/// <param name="Step">0 is the start.</param>
/// <param name="Loss">L after the retraction.</param>
/// <param name="MaxAbsResidual">max|H| after the retraction.</param>
/// <param name="Rank">rank J after the step (<see cref="JacobianFactorization.Rank"/>).</param>
/// <param name="PathLength">Σ of ‖p_{s} − p_{s−1}‖ so far.</param>
/// <param name="Displacement">‖p_s − p_0‖.</param>
/// <param name="NormalCorrection">‖retraction move‖: how far the retraction pulled back onto M (second order in the step; in JSON, <c>retraction</c>).</param>
/// <param name="RetractionSteps">Corrector steps of the retraction (chord steps, plus Gauss–Newton steps where the chord stalled; in JSON, <c>gaussNewtonSteps</c>).</param>
public sealed record WalkStep(int Step, double Loss, double MaxAbsResidual, int Rank, double PathLength, double Displacement,
    [property: JsonPropertyName("retraction")] double NormalCorrection, [property: JsonPropertyName("gaussNewtonSteps")] int RetractionSteps);

/// <summary>The walk's record.</summary>
/// <param name="Steps">The start and each step.</param>
/// <param name="Status">Converged when every retraction reached the tolerance.</param>
/// <param name="Factorizations">Factorizations of J made: one at the start and one per step, plus those of any fallback retraction.</param>
public sealed record WalkResult(IReadOnlyList<WalkStep> Steps, SolverStatus Status, [property: JsonIgnore] int Factorizations);

/// <summary>
/// A random walk on M = H⁻¹(0): a tangent step t = Πu, Π = I − V_kV_kᵀ the projection onto ker J (the tangent space of
/// M at a regular point, <see cref="JacobianFactorization.TangentProjection"/>), scaled to the step size; then a
/// retraction onto M. That the loss stays at 0 while the point travels shows that M is a manifold of positive
/// dimension (Theorems 2.1 and 4.1), not a point.
/// </summary>
/// <remarks>
/// <para>Each step factors J once. The factorization at p_s gives the rank recorded for p_s, the tangent step of step
/// s + 1, and its retraction: the chord (simplified Newton) corrector p ← p − J(p_s)⁺H(p), which moves in the normal
/// space at p_s and converges linearly with rate about ‖J(p_s)⁺‖·‖J(p) − J(p_s)‖ = O(‖t‖) (the chord method: Kelley,
/// Iterative Methods for Linear and Nonlinear Equations, SIAM 1995, §5.4; as the corrector of a predictor–corrector
/// continuation: Allgower &amp; Georg, Introduction to Numerical Continuation Methods, 1990, ch. 3). When a chord step fails to
/// reduce max|H| by the factor <see cref="ChordContraction"/>, the retraction falls back to
/// <see cref="GaussNewtonProjection.Project"/> from the stepped point (which factors J at each of its steps). The same
/// retraction projects the manifold path's chords (<see cref="ManifoldPath"/>).</para>
/// </remarks>
public static class ManifoldWalk
{
    /// <summary>
    /// The contraction each chord step must achieve: max|H| at most ½ of the previous. Chosen: a slower linear rate means
    /// J has moved too far from J(p_s) for the frozen linearization, and a few quadratic Gauss–Newton steps are then
    /// cheaper than many chord steps.
    /// </summary>
    public const double ChordContraction = 0.5;

    /// <summary>
    /// Chord steps allowed, and Gauss–Newton steps of the fallback: 20, the retraction budget the walk has always used.
    /// Even at the slowest accepted rate <see cref="ChordContraction"/>, 20 chord steps reduce max|H| by 10⁶.
    /// </summary>
    public const int RetractionSteps = 20;

    /// <summary>Walks the problem's point (a map's model is moved).</summary>
    /// <param name="map">
    /// The model and data (a <see cref="ResidualMap"/>) or any other <see cref="IResidualProblem"/>, such as a cluster session
    /// (J then factored by its own route, the Gram matrix of the shards); its point is the start, on M.
    /// </param>
    /// <param name="options">Steps, step size, seed, tolerance.</param>
    /// <param name="limits">
    /// The budget of the factorization of J. The token is checked before each step: cancelling ends the walk with
    /// <see cref="SolverStatus.Cancelled"/> and the model at the end of the last finished step (a point of M, retracted),
    /// not an exception. During the first factorization of J, before any step, it is checked between the blocks of the
    /// factorization and cancelling then throws <see cref="OperationCanceledException"/> with the model at its start: there
    /// is no step to keep.
    /// </param>
    /// <exception cref="MemoryBudgetExceededException">The factorization of J does not fit the budget.</exception>
    public static WalkResult Run(IResidualProblem map, WalkOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.LossFunction.RequireResidualSum("the walk on M");
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        var route = options.Route == JacobianRoute.Auto ? JacobianFactorization.ChooseRoute(map, limits) : options.Route;
        // One factorization is live at a time (the fallback projection disposes each of its own).
        limits.Require($"the walk on M (J is {map.Constraints} × {map.ParameterCount})", JacobianFactorization.RequiredBytes(map, route),
            $"use a subset of the data (ℓd = {map.Constraints})", BudgetRemedy.Rows);
        using var scope = NewDisposeScope();
        var rng = new Random(options.Seed);
        var start = map.GetPoint();
        // A token cancelled already (a signal while loading) lets the factorization finish: the loop then stops with the start recorded.
        var factors = JacobianFactorization.Factor(map, route, limits.IsCancellationRequested ? limits.WithoutCancellation() : limits);
        int factorizations = 1;
        try
        {
            var steps = new List<WalkStep> { Record(map, factors, 0, 0, start, 0, 0) };
            double length = 0;
            var status = SolverStatus.Converged;
            for (int s = 1; s <= options.Steps; s++)
            {
                if (limits.IsCancellationRequested)
                {
                    status = SolverStatus.Cancelled;
                    break;
                }
                using var stepScope = NewDisposeScope();
                var before = map.GetPoint();
                var t = factors.TangentProjection(tensor(SeededNormal.Vector(rng, map.ParameterCount)));
                double norm = t.norm().item<double>();
                if (!(norm > 0))
                {
                    status = SolverStatus.Breakdown; // ker J = {0}: no tangent direction to walk along
                    break;
                }
                var afterStep = before.Plus(t.Times(options.StepSize / norm));
                map.SetPoint(afterStep);
                var retraction = ChordRetraction.Retract(map, factors, route, options.Tolerance);
                factorizations += retraction.Factorizations;
                if (retraction.Status != SolverStatus.Converged)
                {
                    status = retraction.Status;
                }
                factors.Dispose();
                factors = JacobianFactorization.Factor(map, route);
                factorizations++;
                var after = map.GetPoint();
                length += (after - before).norm().item<double>();
                double correction = (after - afterStep).norm().item<double>();
                steps.Add(Record(map, factors, s, length, start, correction, retraction.Steps));
            }
            return new WalkResult(steps, status, factorizations);
        }
        finally
        {
            factors.Dispose();
        }
    }

    private static WalkStep Record(IResidualProblem map, JacobianFactorization factors, int step, double length, Tensor start, double correction, int retractionSteps)
    {
        using var scope = NewDisposeScope();
        return new WalkStep(step, map.Loss(), map.MaxAbsResidual(), factors.Rank.Rank, length,
            (map.GetPoint() - start).norm().item<double>(), correction, retractionSteps);
    }
}
