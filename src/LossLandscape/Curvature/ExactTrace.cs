using LossLandscape.Operators;
using LossLandscape.Engine;

namespace LossLandscape.Curvature;

/// <summary>
/// The exact trace tr A = Σᵢ eᵢᵀAeᵢ from n applications to unit vectors (<see cref="LinearOperator.ExactTrace"/>), as a
/// <see cref="TraceResult"/> beside the stochastic estimators: standard error 0, no samples.
/// </summary>
public static class ExactTrace
{
    /// <summary>tr A of the square operator <paramref name="op"/>, exactly (n applications, in blocks of <paramref name="blockSize"/>).</summary>
    /// <param name="op">A square operator.</param>
    /// <param name="blockSize">Unit vectors per application block.</param>
    /// <param name="limits">The token, checked after each block; the columns done reported as they are done.</param>
    /// <returns>The trace; Status Converged (exact), or Breakdown when the operator produced NaN.</returns>
    public static TraceResult Compute(LinearOperator op, int blockSize = 64, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        long start = op.Applications;
        double trace = op.ExactTrace(blockSize, limits);
        return new TraceResult(trace, 0, [], 0, op.Applications - start,
            ConvergenceTest.IsBreakdown(trace) ? SolverStatus.Breakdown : SolverStatus.Converged);
    }
}
