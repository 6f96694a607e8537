namespace LossLandscape.Tests;

/// <summary>Named tolerances; each comment says where the number comes from.</summary>
internal static class Tolerances
{
    /// <summary>Two exact float64 computations of the same quantity in different operation orders: a few thousand ε (ε ≈ 2.2e−16).</summary>
    public const double ExactAgreement = 1e-12;

    /// <summary>
    /// Central differences with step h = 1e−6 on values of order 1: truncation h²·|f‴|/6 ≈ 1e−13 plus
    /// rounding ε·|f|/h ≈ 2e−10, so 1e−7 relative to the largest entry leaves a wide margin yet catches any wrong entry.
    /// </summary>
    public const double FiniteDifference = 1e-7;

    /// <summary>The central-difference step.</summary>
    public const double FiniteDifferenceStep = 1e-6;

    /// <summary>A closed form against an independent evaluation of the same formula: a few ε relative.</summary>
    public const double ClosedForm = 1e-14;

    /// <summary>
    /// Singular values of J by two routes (or a route and LAPACK's svdvals) agree to this multiple of the route's stated
    /// resolution (<see cref="Geometry.RankDecision.Resolution"/>: √max(ℓd, n)·ε·σmax for the SVD, √(ℓd·ε)·σmax for
    /// √eig(JJᵀ)); the resolution is itself a backward-error bound up to a modest constant, which 10 covers.
    /// </summary>
    public const double ResolutionMultiple = 10;

    /// <summary>
    /// J⁺r and Πu against the dense reference (torch linalg.pinv): relative error at most this multiple of ε·κ on the SVD
    /// route and of ε·κ² on the Gram route, κ = σmax/σ_rank — the forward-error bounds of a backward-stable
    /// least-squares solve and of the normal equations (Higham, Accuracy and Stability of Numerical Algorithms, 2002,
    /// §20.1 and §20.4). 1e3 covers the bounds' dimension-dependent constants at the table's sizes (n ≤ 50).
    /// </summary>
    public const double SolveErrorMultiple = 1e3;
}
