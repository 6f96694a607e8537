namespace LossLandscape.Reports;

/// <summary>One row of <c>landscape verify</c>: a claim, where it was tested, what was measured and what was expected.</summary>
/// <param name="Claim">The claim, citing the paper (e.g. "Lemma 3.3: zero training error").</param>
/// <param name="Setting">Data, activation, depth, widths, n, d, ℓ.</param>
/// <param name="Measured">The measured value, as text.</param>
/// <param name="Expected">The expected value or bound, as text.</param>
/// <param name="Pass">Whether the measurement meets the expectation.</param>
/// <param name="Seconds">Wall time of the check.</param>
public sealed record ClaimCheck(string Claim, string Setting, string Measured, string Expected, bool Pass, double Seconds);
