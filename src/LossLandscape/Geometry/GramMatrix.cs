using LossLandscape.Problem;
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
/// Cost about Σ_k (ℓd)²·out_k (the blocks on and above the diagonal: about half of δδᵀ) + d²·in_k, memory O((ℓd)² + ℓd·max width),
/// never ℓd·n. Other models use J Jᵀ.
/// </remarks>
public static class GramMatrix
{
    /// <summary>Whether the factored route applies (the model is one of the project's MLPs).</summary>
    public static bool HasFactoredRoute(IResidualProblem map) => map.Model is NetworkModel { Network: Mlp };

    /// <summary>
    /// The bytes <see cref="Compute"/> holds at once, with m = ℓd. Factored (MLP): K, a row band of the expanded inner
    /// products (<see cref="BlockRows"/> × m), two <see cref="BlockRows"/>² blocks, the d × d inner products, and the
    /// per-layer factors (a_{k−1}: d × in_k, δ_k: m × out_k, and the pre-activations d × out_k, for every layer at once).
    /// Otherwise J (m × n) and K.
    /// </summary>
    public static long RequiredBytes(IResidualProblem map)
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
            long band = Math.Min(m, BlockRows);
            return checked(MemoryBudget.DenseMatrixBytes(m, m) + MemoryBudget.DenseMatrixBytes(band, m) + (2 * MemoryBudget.DenseMatrixBytes(band, band))
                + MemoryBudget.DenseMatrixBytes(d, d) + factors);
        }
        return checked(MemoryBudget.DenseMatrixBytes(m, map.ParameterCount) + MemoryBudget.DenseMatrixBytes(m, m));
    }

    /// <summary>
    /// K = JJᵀ at the problem's current point: from its per-layer factors (<see cref="IResidualProblem.GramFactors"/>, on a
    /// cluster gathered from the shards) by <see cref="FromFactors"/> where the model has them, else J Jᵀ.
    /// </summary>
    /// <param name="map">The model and data.</param>
    /// <param name="limits">
    /// The token, checked between blocks; factored route: "Gram matrix, layer k/L" reported after each block product (about
    /// 40 s in all at ℓd = 10,000, width 3000).
    /// </param>
    public static Tensor Compute(IResidualProblem map, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        if (map.GramFactors() is { } factors)
        {
            return FromFactors(factors, map.Outputs, limits).MoveToOuterDisposeScope();
        }
        var j = map.Jacobian();
        return j.matmul(j.t()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Rows per block of the symmetric blocked product: 2048. Only the blocks on and above the diagonal are multiplied
    /// (about half the flops of δδᵀ at ℓd = 10,000: 15 of 25 blocks), and the temporaries are a few 2048 × 2048 blocks
    /// (32 MB each) instead of three ℓd × ℓd matrices.
    /// </summary>
    public const int BlockRows = 2048;

    /// <summary>
    /// K by the per-layer factorization (see remarks), for raw inputs X (d × p). The token of <paramref name="limits"/> is
    /// checked before each block product (a few 2048 × 2048 products): cancelling throws <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <remarks>
    /// Blocked by rows (<see cref="BlockRows"/>): for blocks I ≤ J, K[I, J] += (δ_I δ_Jᵀ) ⊙ (a a′ + 1)[I/ℓ, J/ℓ], the row (i, j)
    /// of K belonging to sample i = row/ℓ (sample-major, as H is flattened); the lower triangle is mirrored at the end.
    /// </remarks>
    public static Tensor Factored(Mlp mlp, Tensor parameters, Tensor inputs, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        using var scope = NewDisposeScope();
        var factors = mlp.JacobianFactors(parameters, inputs).Select(f => (f.Input, f.Delta.reshape(-1, f.Delta.shape[^1]))).ToArray();
        return FromFactors(factors, mlp.OutputDim, limits).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// K from per-layer factors: for each layer the inputs a (d × in) and δ (ℓd × out, row i·ℓ + j for sample i, output j),
    /// K = Σ_layers (δδᵀ) ⊙ (aaᵀ + 1) expanded to the ℓd rows, blocked by <see cref="BlockRows"/> and exactly symmetric
    /// (the remarks of <see cref="Factored"/>). The token of <paramref name="limits"/> is checked before each block product.
    /// </summary>
    public static Tensor FromFactors(IReadOnlyList<(Tensor Inputs, Tensor Deltas)> factors, int outputs, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(factors);
        limits ??= RunLimits.Default;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long d = factors[0].Inputs.shape[0];
        int l = outputs;
        long m = d * l;
        var k = zeros(m, m, dtype: float64);
        var blocks = new List<(long Start, long Count)>();
        for (long start = 0; start < m; start += BlockRows)
        {
            blocks.Add((start, Math.Min(BlockRows, m - start)));
        }
        // The sample of each row of K, for gathering the d × d inner products into a block.
        var sampleOfRow = ScalarArithmetic.Range(0, m, 1, int64).FloorOverInPlace(l);
        int pairs = blocks.Count * (blocks.Count + 1) / 2, done = 0, total = pairs * factors.Count;
        for (int layer = 0; layer < factors.Count; layer++)
        {
            var (a, delta) = factors[layer];
            using var layerScope = NewDisposeScope();
            var flat = delta.reshape(m, -1);
            var inner = a.matmul(a.t()).PlusInPlace(1.0);               // aᵢ·aᵢ′ + 1, d × d
            for (int bi = 0; bi < blocks.Count; bi++)
            {
                var (si, ci) = blocks[bi];
                var rowsI = flat.narrow(0, si, ci);
                var innerRows = l == 1 ? inner.narrow(0, si, ci) : inner.index_select(0, sampleOfRow.narrow(0, si, ci));
                for (int bj = bi; bj < blocks.Count; bj++)
                {
                    limits.ThrowIfCancellationRequested();
                    using var blockScope = NewDisposeScope();
                    var (sj, cj) = blocks[bj];
                    var expanded = l == 1 ? innerRows.narrow(1, sj, cj) : innerRows.index_select(1, sampleOfRow.narrow(0, sj, cj));
                    var product = rowsI.matmul(flat.narrow(0, sj, cj).t()).mul_(expanded); // (δ·δ′)(a·a′ + 1)
                    k.narrow(0, si, ci).narrow(1, sj, cj).PlusInPlace(product);
                    limits.Report($"Gram matrix, layer {layer + 1}/{factors.Count}", (double)++done / total);
                }
            }
        }
        // Mirror the strictly upper blocks into the lower ones, K[J, I] = K[I, J]ᵀ, and symmetrise the diagonal blocks (a
        // product δ_I δ_Iᵀ is symmetric only up to rounding), so that K is exactly symmetric.
        for (int bi = 0; bi < blocks.Count; bi++)
        {
            using var mirrorScope = NewDisposeScope();
            var (s0, c0) = blocks[bi];
            var diagonalBlock = k.narrow(0, s0, c0).narrow(1, s0, c0);
            diagonalBlock.copy_(diagonalBlock.Plus(diagonalBlock.t()).TimesInPlace(0.5));
            for (int bj = bi + 1; bj < blocks.Count; bj++)
            {
                var (si, ci) = blocks[bi];
                var (sj, cj) = blocks[bj];
                k.narrow(0, sj, cj).narrow(1, si, ci).copy_(k.narrow(0, si, ci).narrow(1, sj, cj).t());
            }
        }
        return k.MoveToOuterDisposeScope();
    }
}
