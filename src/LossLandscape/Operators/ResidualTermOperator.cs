using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// The residual (second-order) term of the Hessian, R = ∇²L − G = Σ_k ℓ′(H_k)∇²H_k with ℓ(h) = |h|^a;
/// for the squared loss R = 2Σ_k H_k∇²f_k. It vanishes on the locus of global minima H = 0, where ∇²L = G.
/// </summary>
/// <remarks>
/// Applied as the difference of <see cref="HessianOperator"/> and <see cref="GaussNewtonOperator"/>
/// (the Gauss-Newton decomposition, Schraudolph 2002 §3); each application costs one of each, and is
/// counted in their own <see cref="LinearOperator.Applications"/> as well as in this one's.
/// </remarks>
public sealed class ResidualTermOperator : LinearOperator
{
    /// <summary>The residual term of <paramref name="map"/>'s loss at the model's current point.</summary>
    public ResidualTermOperator(IResidualProblem map)
        : base((map ?? throw new ArgumentNullException(nameof(map))).ParameterCount, map.ParameterCount, ScalarType.Float64, map.Model.Leaves[0].device, isSymmetric: true)
    {
        Hessian = new HessianOperator(map);
        GaussNewton = new GaussNewtonOperator(map);
    }

    /// <summary>∇²L.</summary>
    public HessianOperator Hessian { get; }

    /// <summary>G.</summary>
    public GaussNewtonOperator GaussNewton { get; }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => Hessian.Apply(v).sub_(GaussNewton.Apply(v));

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Hessian.ApplyMatrix(block).sub_(GaussNewton.ApplyMatrix(block));
}
