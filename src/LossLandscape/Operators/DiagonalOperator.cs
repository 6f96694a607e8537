using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// A diagonal matrix D = diag(d₁, …, dₙ) as an operator: Dv = d ⊙ v, with (D + λI)⁻¹v = v ⊘ (d + λ) and
/// log det(D + λI) = Σᵢ log(dᵢ + λ) exactly. The diagonal curvature approximations (the exact diagonal of the Gauss–Newton
/// matrix, Hutchinson's estimate of the Hessian's diagonal) are of this kind.
/// </summary>
/// <remarks>
/// The diagonal approximation of the curvature goes back to Becker &amp; LeCun 1988, "Improving the convergence of
/// back-propagation learning with second order methods"; it is the curvature of diagonal Laplace (Daxberger et al. 2021, §3.2).
/// </remarks>
public sealed class DiagonalOperator : LinearOperator, IDampedInverse, IDisposable
{
    private readonly Tensor _diagonal;

    /// <summary>Wraps a copy of <paramref name="diagonal"/> (a vector of length n).</summary>
    public DiagonalOperator(Tensor diagonal)
        : base(Length(diagonal), Length(diagonal), diagonal.dtype, diagonal.device, isSymmetric: true)
    {
        _diagonal = diagonal.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>d, the diagonal (owned by the operator; do not dispose).</summary>
    public Tensor Diagonal => _diagonal;

    /// <inheritdoc/>
    public Tensor DampedInverseTimes(Tensor v, double damping)
    {
        DampedInverse.CheckDamping(damping);
        using var scope = NewDisposeScope();
        var (block, wasVector) = DampedInverse.AsBlock(v, Columns);
        var shifted = _diagonal.Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, "the diagonal D");
        var result = block.to(DType, Device).div(shifted.unsqueeze(1));
        return (wasVector ? result.squeeze(1) : result).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public double DampedLogDeterminant(double damping)
    {
        DampedInverse.CheckDamping(damping);
        using var scope = NewDisposeScope();
        var shifted = _diagonal.Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, "the diagonal D");
        return shifted.log().sum().to_type(ScalarType.Float64).item<double>();
    }

    /// <inheritdoc/>
    public void Dispose() => _diagonal.Dispose();

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => v.mul(_diagonal);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => block.mul(_diagonal.unsqueeze(1));

    private static long Length(Tensor diagonal)
    {
        ArgumentNullException.ThrowIfNull(diagonal);
        return diagonal.dim() == 1
            ? diagonal.shape[0]
            : throw new ArgumentException($"a diagonal operator needs a vector, got shape [{string.Join(",", diagonal.shape)}]", nameof(diagonal));
    }
}
