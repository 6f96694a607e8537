using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// An operator A whose structure gives (A + λI)⁻¹v and log det(A + λI) exactly, without a dense n × n matrix: a diagonal, a
/// block diagonal, Kronecker factors with their eigendecompositions. What the Laplace approximation (the log marginal
/// likelihood needs log det(A + λI)) and influence functions (which need (A + λI)⁻¹∇ℓ) take from C#.
/// </summary>
/// <remarks>
/// MacKay 1992, "A practical Bayesian framework for backpropagation networks" (the Laplace evidence with log det);
/// Koh &amp; Liang 2017, "Understanding black-box predictions via influence functions" (the damped inverse product);
/// Daxberger et al. 2021, "Laplace redux", §2 for both with KFAC and diagonal curvature.
/// </remarks>
public interface IDampedInverse
{
    /// <summary>
    /// (A + λI)⁻¹V for a vector (n) or a block of k columns (n × k), λ = <paramref name="damping"/>; a new tensor of the
    /// same shape.
    /// </summary>
    /// <exception cref="LandscapeInputException">λ is not finite, or A + λI is not positive definite (λ too small for A's smallest eigenvalue).</exception>
    Tensor DampedInverseTimes(Tensor v, double damping);

    /// <summary>log det(A + λI), λ = <paramref name="damping"/>: the sum of log(μᵢ + λ) over A's eigenvalues μᵢ.</summary>
    /// <exception cref="LandscapeInputException">λ is not finite, or A + λI is not positive definite.</exception>
    double DampedLogDeterminant(double damping);
}

/// <summary>The checks every <see cref="IDampedInverse"/> shares.</summary>
internal static class DampedInverse
{
    /// <summary>Refuses a damping that is not a finite number.</summary>
    public static void CheckDamping(double damping)
    {
        if (!double.IsFinite(damping))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the damping λ must be a finite number, got {damping}"), nameof(damping));
        }
    }

    /// <summary>Refuses eigenvalues μ + λ that are not all positive, naming the smallest and the λ that would make A + λI positive definite.</summary>
    public static void RequirePositive(Tensor shifted, double damping, string what)
    {
        double smallest = shifted.min().to_type(ScalarType.Float64).item<double>();
        if (!(smallest > 0))
        {
            throw new LandscapeInputException(FormattableString.Invariant(
                $"{what} + λI is not positive definite at λ = {damping:G6}: its smallest eigenvalue is {smallest:G6}; use a damping λ > {damping - smallest:G6}"));
        }
    }

    /// <summary>A vector as an n × 1 block (and whether it was one), for implementations written on blocks.</summary>
    public static (Tensor Block, bool WasVector) AsBlock(Tensor v, long n)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (v.dim() == 1 && v.shape[0] == n)
        {
            return (v.unsqueeze(1), true);
        }
        if (v.dim() == 2 && v.shape[0] == n)
        {
            return (v, false);
        }
        throw new ArgumentException($"expected a vector of length {n} or an {n}×k block, got shape [{string.Join(",", v.shape)}]", nameof(v));
    }
}
