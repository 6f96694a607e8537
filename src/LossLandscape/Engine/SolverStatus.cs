using System.Text.Json;

namespace LossLandscape.Engine;

/// <summary>
/// How an iterative method ended: the one status of every solver, estimator and training run of the library
/// (Math.NET's single <c>IterationStatus</c> for all its solvers).
/// </summary>
public enum SolverStatus
{
    /// <summary>The stated convergence test held (‖r‖ ≤ max(rtol·scale, atol), <see cref="ConvergenceTest"/>), or the result is exact.</summary>
    Converged,

    /// <summary>The iteration, probe or step budget ran out before the convergence test held; the result is the last (or best) iterate.</summary>
    StoppedWithoutConvergence,

    /// <summary>
    /// The method could not continue: a zero pivot, an invariant Krylov space it was not allowed to leave, no descent, or
    /// a residual that is NaN (<see cref="ConvergenceTest"/>: a NaN is never Converged).
    /// </summary>
    Breakdown,

    /// <summary>
    /// An optimizer can make no more progress (a Gauss–Newton/Levenberg–Marquardt step that no damping makes decrease L,
    /// a failed line search, a zero gradient) above its target. For Gauss–Newton with n &lt; ℓd this is the expected end:
    /// a stationary point with L &gt; 0.
    /// </summary>
    Stalled,

    /// <summary>The objective became infinite or NaN (a learning rate too large); the best point is kept.</summary>
    Diverged,

    /// <summary>The run was cancelled (Ctrl-C); the best point so far is kept.</summary>
    Cancelled,
}

/// <summary>The one spelling of a <see cref="SolverStatus"/> in JSON and tables.</summary>
public static class SolverStatusText
{
    /// <summary>
    /// The status as JSON spells it: the member name in camelCase ("converged", "stoppedWithoutConvergence", "breakdown",
    /// "stalled", "diverged", "cancelled"), exactly what System.Text.Json's <c>JsonStringEnumConverter</c> writes with
    /// <see cref="JsonNamingPolicy.CamelCase"/>, so hand-written and serialised JSON agree.
    /// </summary>
    public static string ToJsonName(this SolverStatus status) => JsonNamingPolicy.CamelCase.ConvertName(status.ToString());
}
