using LossLandscape.Engine;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// KFAC, the Kronecker-factored approximate curvature: the Gauss–Newton matrix G = Σᵢ JᵢᵀΛᵢJᵢ replaced by its per-layer
/// diagonal blocks, each a Kronecker product G_k ≈ B_k ⊗ A_k of an output factor and an input factor.
/// </summary>
/// <remarks>
/// <para>For a layer with weight W (out × f) and bias b, seen as M = [W | b] acting on ā = [a; 1]: the input factor
/// A = (1/d) Σᵢ Σₜ āᵢₜāᵢₜᵀ ((f + 1) × (f + 1)) and the output factor B = (1/T) Σᵢ Σ꜀ Σₜ δ̃ᵢ꜀ₜδ̃ᵢ꜀ₜᵀ (out × out), with
/// δ̃ᵢ꜀ₜ = Σⱼ Sᵢ[j, c]·∂fⱼ(xᵢ)/∂zₜ the gradient of the layer's output z at position t contracted with the columns of the loss's
/// square-root curvature Sᵢ (SᵢSᵢᵀ = Λᵢ = ∂²ℓᵢ/∂f², <see cref="OutputCurvature"/>). The block acts as B M A on M in p's layout
/// (W row-major, then b).</para>
/// <para>Linear layers: Martens &amp; Grosse 2015, "Optimizing neural networks with Kronecker-factored approximate curvature",
/// §3 (T = 1) and §5 (the exact "type-2" factor and the Monte Carlo Fisher). Convolutions: Grosse &amp; Martens 2016,
/// "A Kronecker-factored approximate Fisher matrix for convolution layers" (KFC), §3.1 and Theorem 1: āᵢₜ are the im2col
/// patches at the T output positions, Ω = Σₜ E[āₜāₜᵀ] and Γ = (1/T) Σₜ E[δₜδₜᵀ]. KFAC equals the exact block whenever
/// one row's factors are the only ones (d = 1, T = 1), and the whole G for the linear model f(x) = Wx + b under a loss with a
/// constant Λ (the squared error, the mean squared error), where δ = I for every row.</para>
/// <para>Batch norm layers have no Kronecker structure: their block (2C × 2C) is the exact Gauss–Newton block Σᵢ꜀ gᵢ꜀gᵢ꜀ᵀ
/// from the per-sample square-root rows, which is small.</para>
/// <para>(B ⊗ A + λI)⁻¹ and log det(B ⊗ A + λI) come from the eigendecompositions of A and B (the eigenvalues of B ⊗ A are
/// the products βₒαⱼ; Martens &amp; Grosse 2015 §6.3 use the same decomposition for the damped inverse).</para>
/// </remarks>
public sealed class KfacOperator : BlockApproximation
{
    private KfacOperator(long n, Device device, IReadOnlyList<ParameterBlock> blocks, BlockCurvature[] parts, KfacOptions options)
        : base(n, device, blocks, parts) => Options = options;

    /// <summary>
    /// Float64 copies of each factor live at once: the factor, LAPACK's working copy and the eigenvectors (the eigenvalues are
    /// a vector): a count of what <see cref="Create"/> and the damped inverse hold.
    /// </summary>
    public const int FactorCopies = 3;

    /// <summary>The options the factors were formed with.</summary>
    public KfacOptions Options { get; }

    /// <summary>
    /// KFAC of <paramref name="problem"/>'s Gauss–Newton matrix at its current point: one pass over the rows, batch by batch, one
    /// forward pass and one reverse sweep each, no autograd. The factors are fixed at that point.
    /// </summary>
    /// <param name="problem">A problem whose model is an MLP or a sequential network (<see cref="ParameterBlocks"/>).</param>
    /// <param name="options">The output-space factor (exact by default, or the seeded Monte Carlo Fisher).</param>
    /// <param name="limits">The budget of the factors (<see cref="RequiredBytes"/>) and of a batch; the token, checked before each batch; the rows reported.</param>
    /// <exception cref="LandscapeInputException">The model has no per-layer blocks, or the Monte Carlo Fisher with a loss that is no likelihood.</exception>
    /// <exception cref="Engine.MemoryBudgetExceededException">The factors exceed the budget.</exception>
    public static KfacOperator Create(IResidualProblem problem, KfacOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        options ??= new KfacOptions();
        limits ??= RunLimits.Default;
        var blocks = ParameterBlocks.Of(problem.Model);
        var parts = Factors(problem, blocks, options, limits, "KFAC factors");
        return new KfacOperator(problem.ParameterCount, problem.Model.Leaves[0].device, blocks, parts, options);
    }

    /// <summary>
    /// The bytes of the factors of <paramref name="blocks"/>: 8·<see cref="FactorCopies"/>·Σ ((f + 1)² + out²) over the Kronecker
    /// blocks and 8·<see cref="FactorCopies"/>·count² over the others; saturating.
    /// </summary>
    public static long RequiredBytes(IReadOnlyList<ParameterBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        double values = blocks.Sum(b => b.IsKronecker ? ((double)(b.FanIn + 1) * (b.FanIn + 1)) + ((double)b.Out * b.Out) : (double)b.Count * b.Count);
        double bytes = sizeof(double) * FactorCopies * values;
        return bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
    }

    /// <summary>
    /// Refuses blocks that are not layers KFAC is defined for (linear, conv2d, and batch norm whose block it keeps exact): a
    /// DAG's levels, whose vertices share no weight matrix, and a TorchScript network's submodules, whose layer types are not read.
    /// </summary>
    /// <exception cref="LandscapeInputException">A block is a DAG's level or a TorchScript submodule.</exception>
    public static void RequireLayers(IReadOnlyList<ParameterBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.FirstOrDefault(b => b.Kind == LayerKind.Level) is { } level)
        {
            throw new LandscapeInputException($"KFAC and EKFAC are defined for linear and conv2d layers; a DAG's {level.Name} has no weight matrix acting on a layer's input (its edges are single weights), so no Kronecker factors: use the diagonal or the block diagonal");
        }
        if (blocks.FirstOrDefault(b => b.Kind == LayerKind.Module) is { } module)
        {
            throw new LandscapeInputException($"KFAC and EKFAC are defined for linear and conv2d layers whose inputs are known; a TorchScript network's {module.Name} is read as parameters only (its layer type, stride and padding are not), so no Kronecker factors: use the diagonal or the block diagonal, or the same network as losslandscape.seq/1");
        }
    }

    /// <summary>The input factor A ((f + 1) × (f + 1)) of block <paramref name="k"/> (owned by the operator; do not dispose).</summary>
    /// <exception cref="InvalidOperationException">The block has no Kronecker structure (batch norm).</exception>
    public Tensor InputFactor(int k) => Kronecker(k).InputFactor;

    /// <summary>The output factor B (out × out) of block <paramref name="k"/> (owned by the operator; do not dispose).</summary>
    /// <exception cref="InvalidOperationException">The block has no Kronecker structure (batch norm).</exception>
    public Tensor OutputFactor(int k) => Kronecker(k).OutputFactor;

    private KroneckerBlock Kronecker(int k) => Part(k) as KroneckerBlock
        ?? throw new InvalidOperationException($"{Blocks[k].Name} has no Kronecker factors (its block is the exact one)");

    /// <summary>
    /// The blocks' curvature: A and B accumulated over the rows for each Kronecker block (<see cref="KroneckerBlock"/>), the exact
    /// Gauss–Newton block for the others (<see cref="DenseBlock"/>).
    /// </summary>
    internal static BlockCurvature[] Factors(IResidualProblem problem, IReadOnlyList<ParameterBlock> blocks, KfacOptions options, RunLimits limits, string stage)
    {
        RequireLayers(blocks);
        limits.Require($"the KFAC factors of {blocks.Count} layers ({FactorCopies} copies each)", RequiredBytes(blocks), "use a smaller network, or the diagonal approximation", BudgetRemedy.Widths);
        using var scope = NewDisposeScope();
        var inputFactors = new Tensor?[blocks.Count];
        var outputFactors = new Tensor?[blocks.Count];
        var dense = new Tensor?[blocks.Count];
        for (int k = 0; k < blocks.Count; k++)
        {
            var b = blocks[k];
            if (b.IsKronecker)
            {
                inputFactors[k] = zeros(b.FanIn + 1, b.FanIn + 1, dtype: ScalarType.Float64);
                outputFactors[k] = zeros(b.Out, b.Out, dtype: ScalarType.Float64);
            }
            else
            {
                dense[k] = zeros(b.Count, b.Count, dtype: ScalarType.Float64);
            }
        }
        LayerFactors.ForEachBatch(problem, blocks, options, limits, stage, batch =>
        {
            for (int k = 0; k < batch.Count; k++)
            {
                var f = batch[k];
                var b = f.Block;
                if (f.Rows is { } rows)
                {
                    var flat = rows.reshape(-1, b.Count);
                    dense[k]!.PlusInPlace(flat.t().mm(flat));
                    continue;
                }
                // Σᵢₜ āᵢₜāᵢₜᵀ and (1/T) Σᵢ꜀ₜ δ̃ᵢ꜀ₜδ̃ᵢ꜀ₜᵀ, each as one product of the batch's stacked rows.
                var patches = f.Patches!.reshape(-1, b.FanIn + 1);
                inputFactors[k]!.PlusInPlace(patches.t().mm(patches));
                var deltas = f.Deltas!.transpose(2, 3).reshape(-1, b.Out);
                outputFactors[k]!.PlusInPlace(deltas.t().mm(deltas).Over(b.Positions));
            }
        });
        var parts = new BlockCurvature[blocks.Count];
        for (int k = 0; k < blocks.Count; k++)
        {
            parts[k] = blocks[k].IsKronecker
                ? new KroneckerBlock(blocks[k], inputFactors[k]!.OverInPlace(problem.Rows).DetachFromDisposeScope(), outputFactors[k]!.DetachFromDisposeScope())
                : new DenseBlock(dense[k]!.DetachFromDisposeScope());
        }
        return parts;
    }
}
