using LossLandscape.Geometry;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Curvature;

/// <summary>
/// The Hessian ∇²L(p) ∈ ℝⁿˣⁿ of the loss L = Σ_k |H_k|^a of a <see cref="ResidualMap"/> at the model's
/// current point, applied matrix-free: ∇²L v = ∇_p ⟨∇_p L, v⟩ (Pearlmutter 1994, "Fast exact
/// multiplication by the Hessian", by double backward), summed over the map's batches.
/// </summary>
/// <remarks>
/// L is a sum over rows, so ∇²L v = Σ_batches ∇²L_b v: the result does not depend on the batch size beyond
/// floating-point summation order. For a = 2, ∇²L = 2JᵀJ + 2Σ_k H_k∇²H_k (<see cref="GaussNewtonOperator"/>
/// plus <see cref="ResidualTermOperator"/>). A block of k vectors costs one forward and one backward pass per
/// batch plus k double-backward passes. Works for any <see cref="Models.IDifferentiableModel"/>.
/// </remarks>
public sealed class HessianOperator : LinearOperator
{
    /// <summary>The Hessian of <paramref name="map"/>'s loss at the model's current point (read at each application).</summary>
    public HessianOperator(ResidualMap map)
        : base((map ?? throw new ArgumentNullException(nameof(map))).ParameterCount, map.ParameterCount, ScalarType.Float64, ModelDerivatives.DeviceOf(map), isSymmetric: true)
    {
        Map = map;
    }

    /// <summary>The residual map whose loss is differentiated.</summary>
    public ResidualMap Map { get; }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        var leaves = ModelDerivatives.Leaves(Map);
        var result = zeros(Columns, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        foreach (var batch in Map.Batches())
        {
            using var batchScope = NewDisposeScope();
            var gradient = autograd.grad([Map.BatchLoss(batch)], leaves, retain_graph: true, create_graph: true, allow_unused: true);
            for (long j = 0; j < block.shape[1]; j++)
            {
                Map.Cancellation.ThrowIfCancellationRequested(); // one check per product, not per block: a block of 64 on digits takes seconds
                using var columnScope = NewDisposeScope();
                // Pearlmutter: ∇²L v = ∇⟨∇L, v⟩.
                var dot = ModelDerivatives.Dot(gradient, ModelDerivatives.Split(block.select(1, j), leaves));
                if (dot is null)
                {
                    continue; // ∇L_b does not depend on p: ∇²L_b = 0.
                }
                var hv = autograd.grad([dot], leaves, retain_graph: true, allow_unused: true);
                result.select(1, j).PlusInPlace(ModelDerivatives.FlattenGrad(hv, leaves));
            }
        }
        return result;
    }
}
