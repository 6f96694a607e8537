using LossLandscape.Problem;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>The outcome of one retraction onto M.</summary>
/// <param name="Status">Converged when max|H| ≤ the tolerance.</param>
/// <param name="Steps">Corrector steps: chord steps, plus Gauss–Newton steps where the chord stalled.</param>
/// <param name="Factorizations">Factorizations of J made (0 when the chord alone converged).</param>
/// <param name="MaxAbsResidual">max|H| at the end.</param>
/// <param name="Forward">
/// Evaluations of H: one per chord iterate, and for a Gauss–Newton fallback one at its start and two per step (its residual
/// and one trial; further damping trials are not counted).
/// </param>
internal readonly record struct RetractionOutcome(SolverStatus Status, int Steps, int Factorizations, double MaxAbsResidual, int Forward);

/// <summary>
/// The retraction onto M = H⁻¹(0) shared by <see cref="ManifoldWalk"/> and <see cref="ManifoldPath"/>: chord (simplified
/// Newton) steps p ← p − J(p₀)⁺H(p) with J frozen at a nearby point p₀ of M; if one fails to contract, Gauss–Newton
/// (<see cref="GaussNewtonProjection"/>) from the starting point.
/// </summary>
/// <remarks>
/// The chord steps move in the normal space at p₀ (the row space of J(p₀)) and converge linearly with rate about
/// ‖J(p₀)⁺‖·‖J(p) − J(p₀)‖ = O(‖p − p₀‖) (Kelley, Iterative Methods for Linear and Nonlinear Equations, SIAM 1995, §5.4;
/// as the corrector of a predictor–corrector continuation: Allgower &amp; Georg, Introduction to Numerical Continuation
/// Methods, 1990, ch. 3). The constants are <see cref="ManifoldWalk.ChordContraction"/> and <see cref="ManifoldWalk.RetractionSteps"/>.
/// </remarks>
internal static class ChordRetraction
{
    /// <summary>Retracts the model's current point (the model is moved to the result).</summary>
    /// <param name="map">The residual map or another <see cref="IResidualProblem"/>; its point is the start.</param>
    /// <param name="frozen">The factorization of J at p₀.</param>
    /// <param name="route">The route of the fallback's factorizations (the caller has checked their budget).</param>
    /// <param name="tolerance">Stop when max|H| ≤ tolerance (absolute).</param>
    public static RetractionOutcome Retract(IResidualProblem map, JacobianFactorization frozen, JacobianRoute route, double tolerance)
    {
        using var scope = NewDisposeScope();
        var stepped = map.GetPoint();
        double previous = double.PositiveInfinity;
        int chordSteps = 0;
        while (true)
        {
            using var iteration = NewDisposeScope();
            var h = map.Residuals();
            double max = h.abs().max().item<double>();
            if (max <= tolerance)
            {
                return new RetractionOutcome(SolverStatus.Converged, chordSteps, 0, max, chordSteps + 1);
            }
            if (chordSteps >= ManifoldWalk.RetractionSteps || !(max <= ManifoldWalk.ChordContraction * previous))
            {
                break;
            }
            previous = max;
            map.SetPoint(map.GetPoint() - frozen.PseudoInverseTimes(h));
            chordSteps++;
        }
        // The chord stalled (J moved too far from J(p₀) for the frozen linearization): Gauss–Newton from the starting point.
        map.SetPoint(stepped);
        var projection = GaussNewtonProjection.ProjectBy(map, new GaussNewtonOptions(tolerance, ManifoldWalk.RetractionSteps), route);
        return new RetractionOutcome(projection.Status, chordSteps + projection.Steps, projection.Factorizations, projection.FinalMaxResidual,
            chordSteps + 1 + 1 + (2 * projection.Steps));
    }
}
