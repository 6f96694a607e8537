using LossLandscape.Curvature;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// J at one point in factored form, J = W S Vᵀ with σ descending: a thin SVD when J is small enough to form
/// (<see cref="JacobianSvd"/>), else the eigendecomposition
/// K = JJᵀ = W S² Wᵀ (<see cref="GramMatrix"/>) with V never formed (vᵢ = Jᵀwᵢ/σᵢ). It gives the damped
/// minimum-norm steps of Gauss–Newton and Levenberg–Marquardt, s(μ) = Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀr) = Jᵀ(JJᵀ + μI)⁻¹r.
/// </summary>
/// <remarks>
/// Tolerance (the singular values no step may divide by): √max(ℓd, n)·ε·σmax on the SVD route (its backward
/// error), √(ℓd·ε)·σmax on the Gram route (eigenvalues of K carry ℓd·ε·λmax).
/// </remarks>
public sealed class JacobianFactorization : IDisposable
{
    private readonly ResidualMap _map;
    private readonly JacobianSvd? _svd;

    private JacobianFactorization(ResidualMap map, Tensor left, double[] sigma, JacobianSvd? svd, double tolerance)
    {
        _map = map;
        Left = left;
        Sigma = sigma;
        _svd = svd;
        Tolerance = tolerance;
    }

    /// <summary>W, ℓd × r, the left singular vectors, in the order of <see cref="Sigma"/>.</summary>
    public Tensor Left { get; }

    /// <summary>σ₁ ≥ σ₂ ≥ …</summary>
    public double[] Sigma { get; }

    /// <summary>Singular values at or below this are dropped from undamped steps.</summary>
    public double Tolerance { get; }

    /// <summary>σmax (0 for J = 0).</summary>
    public double SigmaMax => Sigma.Length > 0 ? Sigma[0] : 0;

    /// <summary>
    /// Factors J at <paramref name="map"/>'s point: by the SVD when ℓd·n ≤ <see cref="GaussNewtonProjection.DenseJacobianLimit"/>,
    /// min(ℓd, n) ≤ <paramref name="maxDenseRank"/> and (unless <paramref name="allowTall"/>) ℓd ≤ n; else by the Gram route.
    /// </summary>
    public static JacobianFactorization At(ResidualMap map, bool allowTall = false, int maxDenseRank = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        long m = map.Constraints, n = map.ParameterCount;
        if (m * n <= GaussNewtonProjection.DenseJacobianLimit && Math.Min(m, n) <= maxDenseRank && (allowTall || m <= n))
        {
            var svd = new JacobianSvd(map.Jacobian());
            return new JacobianFactorization(map, svd.Left, svd.SingularValues.ToArray(), svd, svd.Rank().Tolerance);
        }
        var (lambda, vectors) = linalg.eigh(GramMatrix.Compute(map));
        // eigh is ascending; flip to descending like the SVD.
        var order = arange(lambda.shape[0] - 1, -1, -1, dtype: int64);
        var values = lambda.index_select(0, order).data<double>().Select(v => Math.Sqrt(Math.Max(v, 0))).ToArray();
        double max = values.Length > 0 ? values[0] : 0;
        return new JacobianFactorization(map, vectors.index_select(1, order).contiguous().DetachFromDisposeScope(), values, null, Math.Sqrt(m * JacobianSpectrum.Epsilon) * max);
    }

    /// <summary>Σᵢ aᵢvᵢ = V a: explicitly, or on the Gram route as Jᵀ(W S⁻¹ a).</summary>
    public Tensor RightTimes(Tensor a)
    {
        using var scope = NewDisposeScope();
        if (_svd is not null)
        {
            return _svd.Right.matmul(a).MoveToOuterDisposeScope();
        }
        var inverse = tensor(Sigma.Select(s => s > 0 ? 1 / s : 0).ToArray(), dtype: float64);
        return new JacobianTransposeOperator(_map).Apply(Left.matmul(a * inverse)).MoveToOuterDisposeScope();
    }

    /// <summary>s(μ) = Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀr); at μ = 0 (the Gauss–Newton step J⁺r) σᵢ ≤ <see cref="Tolerance"/> are dropped.</summary>
    public Tensor Step(Tensor r, double mu)
    {
        using var scope = NewDisposeScope();
        var weights = Sigma.Select(s => mu == 0 && s <= Tolerance ? 0 : s / (s * s + mu)).ToArray();
        var coefficients = Left.t().matmul(r) * tensor(weights, dtype: float64);
        return RightTimes(coefficients).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_svd is not null)
        {
            _svd.Dispose();
        }
        else
        {
            Left.Dispose();
        }
    }
}
