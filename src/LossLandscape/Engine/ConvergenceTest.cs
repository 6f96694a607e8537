namespace LossLandscape.Engine;

/// <summary>
/// The convergence test of every iterative method of the library, stated once: ‖r‖ ≤ max(rtol·scale, atol), with NaN
/// checked first — a NaN residual (or scale) is <see cref="SolverStatus.Breakdown"/>, never Converged.
/// </summary>
/// <remarks>
/// The form of JAX's and SciPy's Krylov solvers (<c>‖r‖ ≤ max(tol·‖b‖, atol)</c>). Written without the guard, a test
/// <c>r &gt; tol</c> → "not converged" silently turns a NaN residual into Converged (every comparison with NaN is false);
/// here NaN is decided before any comparison. An infinite residual is not met (and not a breakdown): the iteration may
/// go on or stop at its budget.
/// </remarks>
public static class ConvergenceTest
{
    /// <summary>Whether ‖r‖ ≤ max(rtol·scale, atol) holds; false when anything is NaN.</summary>
    /// <param name="residual">‖r‖ (≥ 0).</param>
    /// <param name="scale">What the relative tolerance is relative to (‖b‖, |λ|max, |estimate|).</param>
    /// <param name="relativeTolerance">rtol.</param>
    /// <param name="absoluteTolerance">atol; default 0.</param>
    public static bool IsMet(double residual, double scale, double relativeTolerance, double absoluteTolerance = 0) =>
        !IsBreakdown(residual, scale) && residual <= Math.Max(relativeTolerance * Math.Abs(scale), absoluteTolerance);

    /// <summary>Whether the residual or its scale is NaN: the method cannot go on meaningfully.</summary>
    public static bool IsBreakdown(double residual, double scale = 0) => double.IsNaN(residual) || double.IsNaN(scale);

    /// <summary>
    /// The test as a status: <see cref="SolverStatus.Breakdown"/> for NaN, <see cref="SolverStatus.Converged"/> when
    /// ‖r‖ ≤ max(rtol·scale, atol), else <see cref="SolverStatus.StoppedWithoutConvergence"/> (not met yet).
    /// </summary>
    public static SolverStatus Evaluate(double residual, double scale, double relativeTolerance, double absoluteTolerance = 0) =>
        IsBreakdown(residual, scale) ? SolverStatus.Breakdown
        : IsMet(residual, scale, relativeTolerance, absoluteTolerance) ? SolverStatus.Converged
        : SolverStatus.StoppedWithoutConvergence;
}
