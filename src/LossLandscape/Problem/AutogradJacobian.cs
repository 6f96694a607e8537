using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Problem;

/// <summary>
/// The generic Jacobian path: for any <see cref="IDifferentiableModel"/>, one forward pass and then one
/// reverse-mode pass per output entry, row i·ℓ + j = ∇_p f_j(xᵢ). Exact, and O(ℓd) backward passes:
/// the reference the batched path is tested against.
/// </summary>
internal static class AutogradJacobian
{
    /// <summary>J ∈ ℝ^{ℓd×n} of the model's outputs on <paramref name="inputs"/> (d × p) at its current point.</summary>
    public static Tensor Compute(IDifferentiableModel model, Tensor inputs)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(inputs);
        using var scope = NewDisposeScope();
        var leaves = model.Leaves.ToArray();
        var outputs = model.Forward(inputs).reshape(-1);
        long rows = outputs.shape[0];
        var jacobian = zeros(rows, model.ParameterCount, dtype: float64);
        for (long r = 0; r < rows; r++)
        {
            using var rowScope = NewDisposeScope();
            var grads = autograd.grad([outputs[r]], leaves, retain_graph: true, allow_unused: true);
            jacobian[r].copy_(ParameterVector.Flatten(grads.ToArray(), model.Leaves));
        }
        return jacobian.MoveToOuterDisposeScope();
    }
}
