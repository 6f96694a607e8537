using LossLandscape.Problem;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>The outcome of <see cref="RegularValuePerturbation.Apply"/>.</summary>
/// <param name="Perturbed">The data with targets y + r.</param>
/// <param name="PerturbationNorm">|r| (strictly below ε).</param>
/// <param name="Projection">The Gauss–Newton projection onto the new M.</param>
public sealed record PerturbationResult(Dataset Perturbed, double PerturbationNorm, GaussNewtonResult Projection);

/// <summary>The outcome of <see cref="RegularValuePerturbation.Certify"/>: the perturbation and the certificate of the point it reached.</summary>
/// <param name="Perturbation">The perturbed targets and the projection onto their M.</param>
/// <param name="Certificate">The certificate of the projected point on the perturbed data.</param>
public sealed record PerturbedCertificate(PerturbationResult Perturbation, CertificateResult Certificate);

/// <summary>
/// Theorem 2.1's "generically": when 0 is not a regular value of H (rank J &lt; ℓd on M), replace the
/// targets yᵢ by yᵢ + rᵢ with |r| &lt; ε; by Sard's theorem almost every such r makes 0 a regular value
/// of the new H. The model is then moved onto the new M by minimum-norm Gauss–Newton steps.
/// </summary>
public static class RegularValuePerturbation
{
    /// <summary>
    /// The perturbed point is projected onto the new M to this fraction of the on-M tolerance (1e−2), so that it certifies
    /// as on M with two orders of magnitude to spare.
    /// </summary>
    public const double ProjectionToleranceFraction = 1e-2;

    /// <summary>
    /// The workflow of Theorem 2.1's "generically", whole: perturb the targets by |r| = ε/2 (<see cref="Apply"/>), project the
    /// model onto the new M to <see cref="ProjectionToleranceFraction"/> of the on-M threshold, and certify the point reached
    /// on the perturbed data with <paramref name="options"/>. The model is left at that point.
    /// </summary>
    /// <param name="model">The model at a point of M (moved).</param>
    /// <param name="data">The data (not changed: the perturbed copy is in the result).</param>
    /// <param name="epsilon">The bound ε on |r|.</param>
    /// <param name="seed">The seed of r's direction.</param>
    /// <param name="options">The certificate's method and on-M tolerance.</param>
    /// <param name="limits">
    /// The budget of the projection and of the certificate; the token, checked by both and before each batch of rows of
    /// the perturbed problem; the second certificate's stages reported.
    /// </param>
    public static PerturbedCertificate Certify(IDifferentiableModel model, Dataset data, double epsilon, int seed, CertificateOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        double threshold = OnManifoldTest.Threshold(data.MaxAbsTarget(), options.OnManifoldTolerance);
        var perturbation = Apply(model, data, epsilon, seed, threshold * ProjectionToleranceFraction, limits.WithoutProgress());
        using var map = new ResidualMap(model, perturbation.Perturbed, cancellation: limits.Cancellation);
        return new PerturbedCertificate(perturbation, Certificate.Compute(map, options, limits));
    }

    /// <summary>
    /// Perturbs the targets by r with |r| = ε/2 in a seeded uniformly random direction and projects the model onto the new M
    /// to <paramref name="tolerance"/>, within <paramref name="limits"/> (the token checked at every step and batch of rows).
    /// </summary>
    public static PerturbationResult Apply(IDifferentiableModel model, Dataset data, double epsilon, int seed, double tolerance, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        limits ??= RunLimits.Default;
        if (!(epsilon > 0) || !double.IsFinite(epsilon))
        {
            throw new LandscapeInputException($"the perturbation bound ε must be a positive number, got {epsilon}");
        }
        var rng = new Random(seed);
        var r = SeededNormal.Vector(rng, data.Count * data.OutputDim);
        double norm = Math.Sqrt(r.Sum(v => v * v));
        var y = new double[data.Count, data.OutputDim];
        for (int i = 0; i < data.Count; i++)
        {
            for (int j = 0; j < data.OutputDim; j++)
            {
                y[i, j] = data.Target(i, j) + r[i * data.OutputDim + j] * (epsilon / 2) / norm;
            }
        }
        var perturbed = data.WithTargets(y, data.TargetNames);
        using var map = new ResidualMap(model, perturbed, cancellation: limits.Cancellation);
        var projection = GaussNewtonProjection.Project(map, new GaussNewtonOptions(tolerance, MaxIterations: 2000), limits);
        double actual = 0;
        for (int i = 0; i < data.Count; i++)
        {
            for (int j = 0; j < data.OutputDim; j++)
            {
                actual += Math.Pow(y[i, j] - data.Target(i, j), 2);
            }
        }
        return new PerturbationResult(perturbed, Math.Sqrt(actual), projection);
    }
}
