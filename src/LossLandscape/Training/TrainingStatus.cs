namespace LossLandscape.Training;

/// <summary>How a training run ended.</summary>
public enum TrainingStatus
{
    /// <summary>L fell to the target loss (by default the float64 zero of L, see <see cref="TrainingOptions.TargetLoss"/>).</summary>
    Converged,

    /// <summary>The step budget ran out first.</summary>
    StoppedWithoutConvergence,

    /// <summary>
    /// The optimizer can make no more progress: a Gauss–Newton/Levenberg–Marquardt step that no damping makes decrease L,
    /// a failed line search, or a zero gradient. For Gauss–Newton with n &lt; ℓd this is the expected end: a stationary point with L &gt; 0.
    /// </summary>
    Stalled,

    /// <summary>L became infinite or NaN (a learning rate too large); the best point is kept.</summary>
    Diverged,

    /// <summary>The run was cancelled (Ctrl-C); the best point so far is kept.</summary>
    Cancelled,
}
