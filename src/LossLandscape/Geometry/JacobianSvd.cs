using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// The thin SVD J = W S Vᵀ of a Jacobian J ∈ ℝ^{m×n}, by Householder QR and an SVD of the small triangular
/// factor: for m ≤ n, Jᵀ = QR, R = U S W′ᵀ, so V = QU (n × m) and W = W′; for m &gt; n, J = QR, R = U S Vᵀ, so
/// W = QU. Backward stable: singular values to about ε·σmax (where JJᵀ loses them below √ε·σmax), and
/// minimum-norm solves with error ∝ κ(J) rather than κ(J)².
/// </summary>
public sealed class JacobianSvd : IDisposable
{
    private readonly Tensor _right;   // V, n × r
    private readonly Tensor _left;    // W, m × r
    private readonly double[] _sigma; // descending

    /// <summary>Factors <paramref name="jacobian"/> (m × n).</summary>
    public JacobianSvd(Tensor jacobian)
    {
        ArgumentNullException.ThrowIfNull(jacobian);
        long m = jacobian.shape[0], n = jacobian.shape[1];
        using var scope = NewDisposeScope();
        Tensor left, right, s;
        if (m <= n)
        {
            var (q, r) = linalg.qr(jacobian.t());
            var (u, sv, wt) = linalg.svd(r, fullMatrices: false);
            right = q.matmul(u);
            left = wt.t();
            s = sv;
        }
        else
        {
            var (q, r) = linalg.qr(jacobian);
            var (u, sv, vt) = linalg.svd(r, fullMatrices: false);
            left = q.matmul(u);
            right = vt.t();
            s = sv;
        }
        _right = right.contiguous().DetachFromDisposeScope();
        _left = left.contiguous().DetachFromDisposeScope();
        _sigma = s.data<double>().ToArray();
        Rows = (int)m;
        Columns = n;
    }

    /// <summary>W (m × r), the left singular vectors.</summary>
    internal Tensor Left => _left;

    /// <summary>V (n × r), the right singular vectors.</summary>
    internal Tensor Right => _right;

    /// <summary>m = ℓd.</summary>
    public int Rows { get; }

    /// <summary>n.</summary>
    public long Columns { get; }

    /// <summary>The singular values, descending.</summary>
    public IReadOnlyList<double> SingularValues => _sigma;

    /// <summary>The rank decision, with resolution √max(m,n)·ε·σmax (the SVD's backward error).</summary>
    public RankDecision Rank()
    {
        double max = _sigma.Length > 0 ? _sigma[0] : 0;
        return RankDecision.FromSingularValues(_sigma, Rows, Math.Sqrt(Math.Max(Rows, Columns)) * JacobianSpectrum.Epsilon * max, Rows <= Columns ? "svd of J (QR of Jᵀ)" : "svd of J (QR of J)");
    }

    /// <summary>J⁺r = V S⁺ Wᵀ r, the minimum-norm least-squares solution, singular values ≤ tolerance dropped.</summary>
    public Tensor PseudoInverseTimes(Tensor r, double tolerance)
    {
        using var scope = NewDisposeScope();
        int k = _sigma.Count(s => s > tolerance);
        if (k == 0)
        {
            return zeros(Columns, dtype: float64).MoveToOuterDisposeScope();
        }
        var coefficients = _left.narrow(1, 0, k).t().matmul(r) / tensor(_sigma.Take(k).ToArray());
        return _right.narrow(1, 0, k).matmul(coefficients).MoveToOuterDisposeScope();
    }

    /// <summary>Πu = u − V_k V_kᵀ u, the projection onto ker J (singular values ≤ tolerance count as zero).</summary>
    public Tensor TangentProjection(Tensor u, double tolerance)
    {
        using var scope = NewDisposeScope();
        int k = _sigma.Count(s => s > tolerance);
        var v = _right.narrow(1, 0, k);
        return (u - v.matmul(v.t().matmul(u))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _right.Dispose();
        _left.Dispose();
    }
}
