using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Problem;

/// <summary>
/// The autograd products the model operators are made of, on one batch of rows of a <see cref="ResidualMap"/>:
/// Jv by the double-vjp trick, Jᵀw by one vjp, ∇²L v by double backward.
/// </summary>
internal static class ModelDerivatives
{
    /// <summary>Splits v ∈ ℝⁿ into pieces shaped (and typed) like the leaves, in order.</summary>
    public static Tensor[] Split(Tensor v, IReadOnlyList<Tensor> leaves)
    {
        var parts = new Tensor[leaves.Count];
        long offset = 0;
        for (int k = 0; k < leaves.Count; k++)
        {
            long size = leaves[k].numel();
            parts[k] = v.narrow(0, offset, size).view(leaves[k].shape).to_type(leaves[k].dtype);
            offset += size;
        }
        return parts;
    }

    /// <summary>
    /// Σ_k ⟨g_k, v_k⟩ over the leaves whose gradient is defined, or null when none is (or none depends on
    /// the graph, so the product is identically zero).
    /// </summary>
    public static Tensor? Dot(IList<Tensor> perLeaf, Tensor[] parts)
    {
        Tensor? total = null;
        for (int k = 0; k < perLeaf.Count; k++)
        {
            var g = perLeaf[k];
            if (g is null || g.IsInvalid || !g.requires_grad)
            {
                continue;
            }
            var term = g.mul(parts[k]).sum();
            total = total is null ? term : total.Plus(term);
        }
        return total;
    }

    /// <summary>A per-leaf autograd answer as one float64 vector of length n (zeros for unused leaves).</summary>
    public static Tensor FlattenGrad(IList<Tensor> perLeaf, IReadOnlyList<Tensor> leaves) =>
        ParameterVector.Flatten(perLeaf.ToArray(), leaves).to_type(ScalarType.Float64);

    /// <summary>
    /// The batch's linearisation: h = H_b (flattened, in the graph), a dummy u (zeros, requires grad) and
    /// g(u) = J_bᵀu built with <c>create_graph</c>, so that Jv = ∂⟨g(u), v⟩/∂u (the double-vjp trick: a
    /// forward-mode product from two reverse-mode ones, exact because g is linear in u).
    /// </summary>
    public static (Tensor H, Tensor U, IList<Tensor> G) Linearize(Tensor h, Tensor[] leaves)
    {
        var u = zeros_like(h).requires_grad_(true);
        var g = autograd.grad([h], leaves, grad_outputs: [u], retain_graph: true, create_graph: true, allow_unused: true);
        return (h, u, g);
    }

    /// <summary>J_b V (rows of the batch × k) from a linearisation, for a float64 block V (n × k).</summary>
    public static Tensor JacobianTimes(Tensor u, IList<Tensor> g, Tensor[] leaves, Tensor block)
    {
        var result = zeros(u.shape[0], block.shape[1], dtype: ScalarType.Float64, device: block.device);
        for (long j = 0; j < block.shape[1]; j++)
        {
            using var columnScope = NewDisposeScope();
            var dot = Dot(g, Split(block.select(1, j), leaves));
            if (dot is null)
            {
                continue;
            }
            var jv = autograd.grad([dot], [u], retain_graph: true, allow_unused: true)[0];
            if (jv is not null && !jv.IsInvalid)
            {
                result.select(1, j).copy_(jv);
            }
        }
        return result;
    }

    /// <summary>J_bᵀ W (n × k) for W with one row per entry of the batch's h, by one vjp per column.</summary>
    public static Tensor JacobianTransposeTimes(Tensor h, Tensor[] leaves, Tensor block)
    {
        var result = zeros(leaves.Sum(l => l.numel()), block.shape[1], dtype: ScalarType.Float64, device: block.device);
        for (long j = 0; j < block.shape[1]; j++)
        {
            using var columnScope = NewDisposeScope();
            var w = block.select(1, j).to_type(h.dtype);
            var grads = autograd.grad([h], leaves, grad_outputs: [w], retain_graph: true, allow_unused: true);
            result.select(1, j).copy_(FlattenGrad(grads, leaves));
        }
        return result;
    }
}
