using LossLandscape.Geometry;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Curvature;

/// <summary>
/// The Jacobian J = ∂H/∂p: ℝⁿ → ℝ^{ℓd} of a <see cref="ResidualMap"/> at the model's current point,
/// matrix-free: Jv = ∂⟨Jᵀu, v⟩/∂u by the double-vjp trick (two reverse passes per batch, exact).
/// Row i·ℓ + j of the output is the entry of sample i, output j, as in <see cref="ResidualMap.Jacobian"/>.
/// </summary>
/// <remarks>Its adjoint is <see cref="JacobianTransposeOperator"/>. Batched over the map's rows; independent of the batch size.</remarks>
public sealed class JacobianOperator : LinearOperator
{
    /// <summary>J of <paramref name="map"/> at the model's current point.</summary>
    public JacobianOperator(ResidualMap map)
        : base((map ?? throw new ArgumentNullException(nameof(map))).Constraints, map.ParameterCount, ScalarType.Float64, ModelDerivatives.DeviceOf(map), isSymmetric: false)
    {
        Map = map;
    }

    /// <summary>The residual map.</summary>
    public ResidualMap Map { get; }

    /// <summary>Jᵀ.</summary>
    public override LinearOperator Adjoint() => new JacobianTransposeOperator(Map);

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        var leaves = ModelDerivatives.Leaves(Map);
        long l = Map.Data.OutputDim;
        var result = zeros(Rows, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        foreach (var batch in Map.Batches())
        {
            using var batchScope = NewDisposeScope();
            var (_, u, g) = ModelDerivatives.Linearize(Map, batch, leaves);
            result.narrow(0, batch.Start * l, batch.Count * l).copy_(ModelDerivatives.JacobianTimes(u, g, leaves, block));
        }
        return result;
    }
}

/// <summary>
/// The transposed Jacobian Jᵀ: ℝ^{ℓd} → ℝⁿ of a <see cref="ResidualMap"/>, Jᵀw = Σ_batches J_bᵀw_b
/// by one vector-Jacobian product (reverse pass) per batch.
/// </summary>
public sealed class JacobianTransposeOperator : LinearOperator
{
    /// <summary>Jᵀ of <paramref name="map"/> at the model's current point.</summary>
    public JacobianTransposeOperator(ResidualMap map)
        : base((map ?? throw new ArgumentNullException(nameof(map))).ParameterCount, map.Constraints, ScalarType.Float64, ModelDerivatives.DeviceOf(map), isSymmetric: false)
    {
        Map = map;
    }

    /// <summary>The residual map.</summary>
    public ResidualMap Map { get; }

    /// <summary>J.</summary>
    public override LinearOperator Adjoint() => new JacobianOperator(Map);

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        var leaves = ModelDerivatives.Leaves(Map);
        long l = Map.Data.OutputDim;
        var result = zeros(Rows, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        foreach (var batch in Map.Batches())
        {
            using var batchScope = NewDisposeScope();
            var h = Map.BatchResiduals(batch).reshape(-1);
            result.PlusInPlace(ModelDerivatives.JacobianTransposeTimes(h, leaves, block.narrow(0, batch.Start * l, batch.Count * l)));
        }
        return result;
    }
}
