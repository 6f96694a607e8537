using LossLandscape.Engine;
using LossLandscape.Operators;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// The exact per-layer block diagonal of a curvature operator A (the Hessian, the Gauss–Newton matrix): diag(A₁₁, …, A_LL)
/// with A_kk = P_k A P_k, P_k the projection on layer k's parameters (<see cref="ParameterBlocks"/>), every entry outside the
/// diagonal blocks zero. Applied by masked products: for V (n × m) the L·m columns P_k V go through one
/// <see cref="LinearOperator.ApplyMatrix"/> of A, and block k of the result is P_k A P_k V. So one application costs L products
/// of A (counted in A's own <see cref="LinearOperator.Applications"/>).
/// </summary>
/// <remarks>
/// The layer-wise block-diagonal approximation of Collobert 2004 ("Large scale machine learning", PhD thesis, §7) and Martens
/// &amp; Grosse 2015 §4.2, here exact: it is what KFAC and EKFAC approximate further. (A + λI)⁻¹ and log det(A + λI) are
/// those of the dense blocks, formed on first use from count products each on unit vectors and decomposed by LAPACK.
/// </remarks>
public sealed class BlockDiagonalOperator : LinearOperator, IDampedInverse, IDisposable
{
    private DenseBlock[]? _dense;

    /// <summary>The block diagonal of <paramref name="exact"/> on <paramref name="blocks"/> (which must lie within its n).</summary>
    public BlockDiagonalOperator(LinearOperator exact, IReadOnlyList<ParameterBlock> blocks)
        : base(Check(exact, blocks).Rows, exact.Columns, exact.DType, exact.Device, isSymmetric: true)
    {
        Exact = exact;
        Blocks = blocks;
    }

    /// <summary>The per-layer block diagonal of <paramref name="problem"/>'s curvature of kind <paramref name="kind"/> (Hessian or Gauss–Newton).</summary>
    /// <exception cref="LandscapeInputException">The model has no per-layer blocks.</exception>
    public static BlockDiagonalOperator Create(IResidualProblem problem, CurvatureKind kind)
    {
        ArgumentNullException.ThrowIfNull(problem);
        var blocks = ParameterBlocks.Of(problem.Model);
        return new BlockDiagonalOperator(CurvatureOperators.Create(problem, kind), blocks);
    }

    /// <summary>A, the operator whose diagonal blocks these are.</summary>
    public LinearOperator Exact { get; }

    /// <summary>The blocks.</summary>
    public IReadOnlyList<ParameterBlock> Blocks { get; }

    /// <summary>
    /// The dense blocks A_kk, formed now if not yet (Σ count_k products of A) within the budget of <paramref name="limits"/>
    /// (three count × count matrices per block: the block, LAPACK's copy, the eigenvectors).
    /// </summary>
    public IReadOnlyList<Tensor> DenseBlocks(RunLimits? limits = null) => Dense(limits ?? RunLimits.Default).Select(b => b.Matrix).ToArray();

    /// <inheritdoc/>
    public Tensor DampedInverseTimes(Tensor v, double damping)
    {
        DampedInverse.CheckDamping(damping);
        using var scope = NewDisposeScope();
        var (block, wasVector) = DampedInverse.AsBlock(v, Columns);
        block = block.to(DType, Device);
        var dense = Dense(RunLimits.Default);
        var result = zeros_like(block);
        for (int k = 0; k < Blocks.Count; k++)
        {
            var b = Blocks[k];
            b.SetRows(result, dense[k].Solve(b.Rows(block), damping));
        }
        return (wasVector ? result.squeeze(1) : result).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    /// <remarks>The parameters in no block (none for the project's layered networks) count as zero rows: their λ adds log λ each.</remarks>
    public double DampedLogDeterminant(double damping)
    {
        DampedInverse.CheckDamping(damping);
        long outside = Columns - Blocks.Sum(b => (long)b.Count);
        return Dense(RunLimits.Default).Sum(b => b.LogDeterminant(damping)) + (outside > 0 ? outside * Math.Log(damping) : 0);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var block in _dense ?? [])
        {
            block.Dispose();
        }
        _dense = null;
    }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        long m = block.shape[1];
        int count = Blocks.Count;
        // Column group k holds P_k V; A applied to all L·m columns at once.
        var masked = zeros(Columns, count * m, dtype: DType, device: Device);
        for (int k = 0; k < count; k++)
        {
            var b = Blocks[k];
            b.SetRows(masked.narrow(1, k * m, m), b.Rows(block));
        }
        var product = Exact.ApplyMatrix(masked);
        var result = zeros_like(block);
        for (int k = 0; k < count; k++)
        {
            var b = Blocks[k];
            b.SetRows(result, b.Rows(product.narrow(1, k * m, m)));
        }
        return result;
    }

    private DenseBlock[] Dense(RunLimits limits)
    {
        if (_dense is not null)
        {
            return _dense;
        }
        double values = Blocks.Sum(b => (double)b.Count * b.Count);
        limits.Require($"the dense diagonal blocks of {Blocks.Count} layers (3 copies each)", values * 3 * sizeof(double) >= long.MaxValue ? long.MaxValue : (long)(values * 3 * sizeof(double)),
            "use KFAC, EKFAC or the diagonal, whose inverses need no dense block", BudgetRemedy.Method);
        var dense = new DenseBlock[Blocks.Count];
        for (int k = 0; k < Blocks.Count; k++)
        {
            limits.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var b = Blocks[k];
            var unit = zeros(Columns, b.Count, dtype: DType, device: Device);
            b.SetRows(unit, eye(b.Count, dtype: DType, device: Device));
            dense[k] = new DenseBlock(b.Rows(Exact.ApplyMatrix(unit)).contiguous().DetachFromDisposeScope());
        }
        _dense = dense;
        return dense;
    }

    private static LinearOperator Check(LinearOperator exact, IReadOnlyList<ParameterBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(exact);
        ArgumentNullException.ThrowIfNull(blocks);
        if (!exact.IsSymmetric)
        {
            throw new ArgumentException("the block diagonal is taken of a symmetric operator", nameof(exact));
        }
        if (blocks.Any(b => b.Indices.Any(i => i < 0 || i >= exact.Columns)))
        {
            throw new ArgumentException($"a block lies outside the operator's {exact.Columns} columns", nameof(blocks));
        }
        return exact;
    }
}
