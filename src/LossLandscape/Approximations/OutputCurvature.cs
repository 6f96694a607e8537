namespace LossLandscape.Approximations;

/// <summary>Which factor of the loss's curvature in the outputs the Kronecker-factored approximations are built from.</summary>
public enum OutputCurvature
{
    /// <summary>
    /// The exact square root Sᵢ of ∂²ℓᵢ/∂f² (SᵢSᵢᵀ = Λᵢ): "type-2" in Martens &amp; Grosse 2015 §5, exact for the squared error,
    /// the mean squared error and cross-entropy; the default.
    /// </summary>
    Exact,

    /// <summary>
    /// The Monte Carlo Fisher: labels drawn from the model's predictive distribution, seeded (Martens &amp; Grosse 2015 §5);
    /// an unbiased estimate of the same factor.
    /// </summary>
    MonteCarlo,
}

/// <summary>Options of the Kronecker-factored approximations (<see cref="KfacOperator"/>, <see cref="EkfacOperator"/>).</summary>
/// <param name="Curvature">The output-space factor: exact (default) or the Monte Carlo Fisher.</param>
/// <param name="MonteCarloSamples">Labels drawn per row for the Monte Carlo Fisher; default 1, KFAC's (Martens &amp; Grosse 2015 §5).</param>
/// <param name="Seed">Seed of the Monte Carlo draws (System.Random); default 0.</param>
public sealed record KfacOptions(OutputCurvature Curvature = OutputCurvature.Exact, int MonteCarloSamples = 1, int Seed = 0)
{
    /// <summary>The draws per row, checked: at least 1.</summary>
    public int MonteCarloSamples { get; init; } = MonteCarloSamples >= 1
        ? MonteCarloSamples
        : throw new LandscapeInputException($"the Monte Carlo Fisher needs at least one sample per row, got {MonteCarloSamples}", nameof(MonteCarloSamples));
}
