using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// Products with the Jacobian J = ∂H/∂p without forming it: Jᵀw (one reverse pass per batch) and
/// Jv (forward mode by the double-vjp identity Jv = ∂/∂u ⟨Jᵀu, v⟩).
/// </summary>
public static class JacobianProducts
{
    /// <summary>Jᵀw ∈ ℝⁿ for w ∈ ℝ^{ℓd} (sample-major, like H), accumulated over the map's batches.</summary>
    public static Tensor TransposeTimes(ResidualMap map, Tensor w)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        var x = map.Data.InputsTensor();
        var total = zeros(map.ParameterCount, dtype: float64);
        int l = map.Data.OutputDim;
        for (long start = 0; start < map.Data.Count; start += map.BatchSize)
        {
            using var batch = NewDisposeScope();
            long count = Math.Min(map.BatchSize, map.Data.Count - start);
            var f = map.Model.Forward(x.narrow(0, start, count)).reshape(-1);
            var weights = w.detach().narrow(0, start * l, count * l);
            var grads = autograd.grad([f.dot(weights)], map.Model.Leaves.ToArray(), allow_unused: true);
            total.add_(ParameterVector.Flatten(grads.ToArray(), map.Model.Leaves));
        }
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>Jv ∈ ℝ^{ℓd} for v ∈ ℝⁿ, by differentiating u ↦ ⟨Jᵀu, v⟩ in u (the double-vjp trick), per batch.</summary>
    public static Tensor Times(ResidualMap map, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        var x = map.Data.InputsTensor();
        int l = map.Data.OutputDim;
        var parts = new List<Tensor>();
        for (long start = 0; start < map.Data.Count; start += map.BatchSize)
        {
            long count = Math.Min(map.BatchSize, map.Data.Count - start);
            var f = map.Model.Forward(x.narrow(0, start, count)).reshape(-1);
            var u = zeros(count * l, dtype: float64, requires_grad: true);
            var leaves = map.Model.Leaves.ToArray();
            var jtu = autograd.grad([f.dot(u)], leaves, create_graph: true, retain_graph: true, allow_unused: true);
            var flat = ParameterVector.Flatten(jtu.ToArray(), map.Model.Leaves);
            parts.Add(flat.requires_grad ? autograd.grad([flat.dot(v.detach())], [u], allow_unused: true)[0].detach() : zeros(count * l, dtype: float64));
        }
        return cat(parts, 0).MoveToOuterDisposeScope();
    }
}
