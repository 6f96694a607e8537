using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

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
public sealed class GaussNewtonOperator : ProblemOperator
{
    /// <summary>The Gauss-Newton matrix of <paramref name="problem"/>'s loss at the model's current point.</summary>
    public GaussNewtonOperator(IResidualProblem problem)
        : base(problem, p => p.ParameterCount, p => p.ParameterCount, isSymmetric: true)
    {
    }

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Problem.GaussNewtonTimes(block);
}
