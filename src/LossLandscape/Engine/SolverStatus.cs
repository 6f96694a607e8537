namespace LossLandscape.Engine;

/// <summary>How an iterative method ended.</summary>
public enum SolverStatus
{
    /// <summary>The stated convergence test held.</summary>
    Converged,

    /// <summary>The iteration budget ran out first.</summary>
    StoppedWithoutConvergence,

    /// <summary>The method could not continue (a zero pivot, an invariant subspace, no descent).</summary>
    Breakdown,
}
