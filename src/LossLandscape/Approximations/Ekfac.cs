using LossLandscape.Engine;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// EKFAC, eigenvalue-corrected KFAC: each layer's block in KFAC's Kronecker eigenbasis Q = U_B ⊗ U_A, with the eigenvalues
/// replaced by the exact second moments of the per-sample gradients in that basis, G_k ≈ Q diag(s) Qᵀ with
/// s = diag(Qᵀ G_k Q) = Σᵢ꜀ (Qᵀgᵢ꜀)², i.e. s[o, j] = Σᵢ꜀ (U_Bᵀ Gᵢ꜀ U_A)²[o, j] for the per-sample gradients Gᵢ꜀ = Σₜ δ̃ᵢ꜀ₜāᵢₜᵀ.
/// </summary>
/// <remarks>
/// George, Laurent, Bouthillier, Ballas &amp; Vincent 2018, "Fast approximate natural gradient descent in a Kronecker-factored
/// eigenbasis", §3 (Algorithm 1 and the proof that s minimises ‖G_k − Q diag(s) Qᵀ‖_F over diagonal s in this basis, so EKFAC's
/// Frobenius error is never above KFAC's). A, B and δ̃ as in <see cref="KfacOperator"/> (same output-space factor); a second pass
/// over the rows forms s. Where an eigenvalue of A or B repeats, U_A or U_B is any orthonormal basis of its eigenspace (the one
/// LAPACK returns, <see cref="InputBasis"/>, <see cref="OutputBasis"/>), and EKFAC depends on that choice. Batch norm blocks are
/// exact, as in KFAC. (Q diag(s) Qᵀ + λI)⁻¹ = Q diag(1/(s + λ)) Qᵀ and log det = Σ log(s + λ).
/// </remarks>
public sealed class EkfacOperator : BlockApproximation
{
    private EkfacOperator(long n, Device device, IReadOnlyList<ParameterBlock> blocks, BlockCurvature[] parts, KfacOptions options)
        : base(n, device, blocks, parts) => Options = options;

    /// <summary>The options the factors were formed with.</summary>
    public KfacOptions Options { get; }

    /// <summary>EKFAC of <paramref name="problem"/>'s Gauss–Newton matrix at its current point: two passes over the rows.</summary>
    /// <param name="problem">A problem whose model is an MLP or a sequential network (<see cref="ParameterBlocks"/>).</param>
    /// <param name="options">The output-space factor (exact by default, or the seeded Monte Carlo Fisher, the same draws in both passes).</param>
    /// <param name="limits">The budget (<see cref="KfacOperator.RequiredBytes"/>, twice for the bases and the corrected eigenvalues); the token; the rows reported.</param>
    /// <exception cref="LandscapeInputException">The model has no per-layer blocks, or the Monte Carlo Fisher with a loss that is no likelihood.</exception>
    public static EkfacOperator Create(IResidualProblem problem, KfacOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        options ??= new KfacOptions();
        limits ??= RunLimits.Default;
        var blocks = ParameterBlocks.Of(problem.Model);
        var kfac = KfacOperator.Factors(problem, blocks, options, limits.Within(0, 0.5, "KFAC factors"), "EKFAC factors");
        using var scope = NewDisposeScope();
        try
        {
            var corrected = new Tensor?[blocks.Count];
            for (int k = 0; k < blocks.Count; k++)
            {
                corrected[k] = blocks[k].IsKronecker ? zeros(blocks[k].Out, blocks[k].FanIn + 1, dtype: ScalarType.Float64) : null;
            }
            LayerFactors.ForEachBatch(problem, blocks, options, limits.Within(0.5, 1, "EKFAC eigenvalues"), "EKFAC eigenvalues", batch =>
            {
                for (int k = 0; k < batch.Count; k++)
                {
                    if (kfac[k] is KroneckerBlock kron)
                    {
                        var (_, ua, _, ub) = kron.Eigen;
                        // (U_Bᵀ Gᵢ꜀ U_A)², summed over the batch's rows and columns.
                        var rotated = ub.t().matmul(batch[k].SampleGradients()).matmul(ua);
                        corrected[k]!.PlusInPlace(rotated.mul(rotated).sum(new long[] { 0, 1 }));
                    }
                }
            });
            var parts = new BlockCurvature[blocks.Count];
            for (int k = 0; k < blocks.Count; k++)
            {
                if (kfac[k] is KroneckerBlock kron)
                {
                    var (_, ua, _, ub) = kron.Eigen;
                    parts[k] = new EigenbasisBlock(blocks[k], ua.clone().DetachFromDisposeScope(), ub.clone().DetachFromDisposeScope(), corrected[k]!.DetachFromDisposeScope());
                    kron.Dispose();
                }
                else
                {
                    parts[k] = kfac[k]; // batch norm: the exact block, as in KFAC
                }
            }
            return new EkfacOperator(problem.ParameterCount, problem.Model.Leaves[0].device, blocks, parts, options);
        }
        catch
        {
            foreach (var part in kfac)
            {
                part.Dispose();
            }
            throw;
        }
    }

    /// <summary>U_A ((f + 1) × (f + 1)) of block <paramref name="k"/>: the eigenvectors of KFAC's input factor (owned by the operator).</summary>
    /// <exception cref="InvalidOperationException">The block has no Kronecker structure (batch norm).</exception>
    public Tensor InputBasis(int k) => Eigenbasis(k).InputBasis;

    /// <summary>U_B (out × out) of block <paramref name="k"/>: the eigenvectors of KFAC's output factor (owned by the operator).</summary>
    /// <exception cref="InvalidOperationException">The block has no Kronecker structure (batch norm).</exception>
    public Tensor OutputBasis(int k) => Eigenbasis(k).OutputBasis;

    /// <summary>s (out × (f + 1)) of block <paramref name="k"/>: the corrected eigenvalue of U_B[:, o] ⊗ U_A[:, j] at [o, j] (owned by the operator).</summary>
    /// <exception cref="InvalidOperationException">The block has no Kronecker structure (batch norm).</exception>
    public Tensor Eigenvalues(int k) => Eigenbasis(k).Eigenvalues;

    private EigenbasisBlock Eigenbasis(int k) => Part(k) as EigenbasisBlock
        ?? throw new InvalidOperationException($"{Blocks[k].Name} has no Kronecker eigenbasis (its block is the exact one)");
}
