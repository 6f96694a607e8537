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
}
