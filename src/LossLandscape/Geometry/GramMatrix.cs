using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// The Gram matrix K = JJᵀ ∈ ℝ^{ℓd×ℓd} of the Jacobian. At a point of M with a = 2, ∇²L = 2JᵀJ, whose
/// nonzero spectrum is 2·eig(K): an ℓd × ℓd problem instead of n × n.
/// </summary>
/// <remarks>
/// For an MLP, K is formed without J: the per-sample gradient of f_j(xᵢ) with respect to W_k is the
/// outer product δ_k[i,j] a_{k−1}[i]ᵀ, so the Gram block of layer k is
/// K_k[(i,j),(i′,j′)] = (δ_k[i,j]·δ_k[i′,j′]) (a_{k−1}[i]·a_{k−1}[i′] + 1), the + 1 from the bias.
/// Cost Σ_k (ℓd)²·out_k + d²·in_k, memory O((ℓd)² + ℓd·max width), never ℓd·n. Other models use J Jᵀ.
/// </remarks>
public static class GramMatrix
{
    /// <summary>Whether the factored route applies (the model is one of the project's MLPs).</summary>
    public static bool HasFactoredRoute(ResidualMap map) => map.Model is NetworkModel { Network: Mlp };

    /// <summary>
    /// The bytes <see cref="Compute"/> holds at once, with m = ℓd. Factored (MLP): K, the product δδᵀ of one layer, the
    /// expanded (aᵢ·aᵢ′ + 1) block and its row-expanded intermediate (four m × m at most), the d × d inner products, and
    /// the per-layer factors (a_{k−1}: d × in_k, δ_k: m × out_k, and the pre-activations d × out_k, for every layer at
    /// once). Otherwise J (m × n) and K.
    /// </summary>
    public static long RequiredBytes(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        long m = map.Constraints, d = map.Data.Count, l = map.Data.OutputDim;
        if (map.Model is NetworkModel { Network: Mlp mlp })
        {
            long factors = 0;
            foreach (var layer in mlp.Layers)
            {
                factors = checked(factors + MemoryBudget.DenseMatrixBytes(d, layer.In) + MemoryBudget.DenseMatrixBytes(d * l + d, layer.Out));
            }
            return checked(4 * MemoryBudget.DenseMatrixBytes(m, m) + MemoryBudget.DenseMatrixBytes(d, d) + factors);
        }
        return checked(MemoryBudget.DenseMatrixBytes(m, map.ParameterCount) + MemoryBudget.DenseMatrixBytes(m, m));
    }

    /// <summary>K = JJᵀ at the model's current point.</summary>
    public static Tensor Compute(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.Model is NetworkModel { Network: Mlp mlp } model)
        {
            return Factored(mlp, model.Parameters, map.Data.InputsTensor());
        }
        using var scope = NewDisposeScope();
        var j = map.Jacobian();
        return j.matmul(j.t()).MoveToOuterDisposeScope();
    }

    /// <summary>K by the per-layer factorization (see remarks), for raw inputs X (d × p).</summary>
    public static Tensor Factored(Mlp mlp, Tensor parameters, Tensor inputs)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long d = inputs.shape[0];
        int l = mlp.OutputDim;
        var k = zeros(d * l, d * l, dtype: float64);
        foreach (var (a, delta) in mlp.JacobianFactors(parameters, inputs))
        {
            using var layerScope = NewDisposeScope();
            var flat = delta.reshape(d * l, -1);
            var inner = a.matmul(a.t()).add_(1.0);               // aᵢ·aᵢ′ + 1, d × d
            var expanded = l == 1 ? inner : inner.repeat_interleave(l, 0).repeat_interleave(l, 1);
            k.add_(flat.matmul(flat.t()).mul_(expanded));        // (δ·δ′)(a·a′ + 1)
        }
        return k.MoveToOuterDisposeScope();
    }
}
