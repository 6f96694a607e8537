using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// Singular values of J, by the route that resolves best within a memory budget, and the rank decided from them.
/// </summary>
/// <remarks>
/// Resolution (the absolute error no decision may rest on), from the standard backward-error bounds:
/// the SVD of J gives each σᵢ to within c·ε·σmax with c = max(ℓd, n)^{1/2} (LAPACK's gesdd); the
/// eigenvalues of K = JJᵀ carry an absolute error ℓd·ε·λmax, so σᵢ = √λᵢ is resolved only down to
/// √(ℓd·ε)·σmax. The Gram route is therefore blind below about 1e−7·σmax at ℓd ≈ 1000, while the SVD
/// of J resolves to about 1e−13·σmax.
/// </remarks>
public static class JacobianSpectrum
{
    /// <summary>Machine epsilon of float64, 2⁻⁵².</summary>
    public const double Epsilon = 2.220446049250313e-16;

    /// <summary>Singular values of J by a dense SVD of J (ℓd × n).</summary>
    public static RankDecision FromJacobian(Tensor jacobian)
    {
        using var scope = NewDisposeScope();
        long m = jacobian.shape[0], n = jacobian.shape[1];
        // SVD of the smaller Gram side is not used: svdvals works on J itself.
        var s = linalg.svdvals(m <= n ? jacobian : jacobian.t()).data<double>().ToArray();
        double max = s.Length > 0 ? s.Max() : 0;
        double resolution = Math.Sqrt(Math.Max(m, n)) * Epsilon * max;
        return RankDecision.FromSingularValues(s, (int)m, resolution, "svd of J");
    }

    /// <summary>The rank decision by the most accurate route that fits: the SVD of J (via QR of Jᵀ) when ℓd·n ≤ <see cref="GaussNewtonProjection.DenseJacobianLimit"/>, else √eig(JJᵀ).</summary>
    public static RankDecision Best(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        if ((long)map.Constraints * map.ParameterCount <= GaussNewtonProjection.DenseJacobianLimit)
        {
            var j = map.Jacobian();
            if (map.Constraints <= map.ParameterCount)
            {
                using var svd = new JacobianSvd(j);
                return svd.Rank();
            }
            return FromJacobian(j);
        }
        return FromGram(GramMatrix.Compute(map));
    }

    /// <summary>Singular values of J as √eig(K), K = JJᵀ.</summary>
    public static RankDecision FromGram(Tensor gram)
    {
        using var scope = NewDisposeScope();
        long m = gram.shape[0];
        var lambda = linalg.eigvalsh(gram).data<double>().ToArray();
        double max = lambda.Length > 0 ? Math.Max(lambda.Max(), 0) : 0;
        double resolution = Math.Sqrt(m * Epsilon * max);
        return RankDecision.FromSingularValues(lambda.Select(v => Math.Sqrt(Math.Max(v, 0))), (int)m, resolution, "eig of JJᵀ");
    }
}
