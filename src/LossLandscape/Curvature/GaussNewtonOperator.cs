using LossLandscape.Geometry;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Curvature;

/// <summary>
/// The generalised Gauss-Newton matrix G = Jᵀ diag(ℓ″(H)) J of L = Σ_k ℓ(H_k), ℓ(h) = |h|^a, at the
/// model's current point: ℓ″(h) = a(a − 1)|h|^{a−2}, so G = 2JᵀJ for the squared loss a = 2, and G = 0 for a = 1.
/// </summary>
/// <remarks>
/// The Hessian splits as ∇²L = Jᵀ diag(ℓ″(H)) J + Σ_k ℓ′(H_k)∇²H_k (Schraudolph 2002, "Fast curvature
/// matrix-vector products for second-order gradient descent", §3; Martens 2020, "New insights and perspectives
/// on the natural gradient method", §8); the second term is <see cref="ResidualTermOperator"/>. G is positive
/// semi-definite for a ≥ 1. Gv is computed per batch as J_bᵀ(ℓ″(H_b) ⊙ J_b v): J_b v by the double-vjp trick
/// (two reverse passes, exact), then one vjp; the result does not depend on the batch size. For 1 &lt; a &lt; 2,
/// ℓ″ is infinite where H_k = 0 and so is G.
/// </remarks>
public sealed class GaussNewtonOperator : LinearOperator
{
    /// <summary>The Gauss-Newton matrix of <paramref name="map"/>'s loss at the model's current point.</summary>
    public GaussNewtonOperator(ResidualMap map)
        : base((map ?? throw new ArgumentNullException(nameof(map))).ParameterCount, map.ParameterCount, ScalarType.Float64, ModelDerivatives.DeviceOf(map), isSymmetric: true)
    {
        Map = map;
    }

    /// <summary>The residual map whose loss is linearised.</summary>
    public ResidualMap Map { get; }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        var result = zeros(Columns, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        double a = Map.Exponent;
        if (a == 1.0)
        {
            return result; // ℓ″ = a(a − 1)|h|^{a−2} = 0 wherever it is defined.
        }
        var leaves = ModelDerivatives.Leaves(Map);
        foreach (var batch in Map.Batches())
        {
            using var batchScope = NewDisposeScope();
            var (h, u, g) = ModelDerivatives.Linearize(Map, batch, leaves);
            var jv = ModelDerivatives.JacobianTimes(u, g, leaves, block);
            // ℓ″(h) = a(a − 1)|h|^{a−2}; exactly 2 for the squared loss.
            var curvature = a == 2.0 ? jv.TimesInPlace(2.0) : jv.mul_(h.detach().abs().Power(a - 2.0).Times(a * (a - 1.0)).to_type(ScalarType.Float64).unsqueeze(1));
            result.PlusInPlace(ModelDerivatives.JacobianTransposeTimes(h, leaves, curvature));
        }
        return result;
    }
}
