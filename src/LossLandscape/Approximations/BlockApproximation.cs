using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// A block-diagonal approximation of the curvature: one block per layer (<see cref="ParameterBlocks.Of(Models.IDifferentiableModel)"/>),
/// each with a structure of its own, so that the product, (A + λI)⁻¹v and log det(A + λI) are sums over the blocks:
/// A = diag(A₁, …, A_L), (A + λI)⁻¹ = diag((A_k + λI)⁻¹), log det(A + λI) = Σ_k log det(A_k + λI).
/// </summary>
public abstract class BlockApproximation : LinearOperator, IDampedInverse, IDisposable
{
    private readonly BlockCurvature[] _parts;
    private bool _disposed;

    private protected BlockApproximation(long n, Device device, IReadOnlyList<ParameterBlock> blocks, BlockCurvature[] parts)
        : base(n, n, ScalarType.Float64, device, isSymmetric: true)
    {
        Blocks = blocks;
        _parts = parts;
    }

    /// <summary>The blocks, first layer first.</summary>
    public IReadOnlyList<ParameterBlock> Blocks { get; }

    private protected BlockCurvature Part(int k) => _parts[k];

    /// <summary>The block of layer <paramref name="k"/> (index into <see cref="Blocks"/>) as a dense count × count matrix, from count products on unit vectors.</summary>
    public Tensor DenseBlock(int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(k, Blocks.Count);
        CheckDenseBudget(Blocks[k].Count, Blocks[k].Count, DType, Engine.RunLimits.Default, $"the dense block of {Blocks[k].Name}");
        using var scope = NewDisposeScope();
        return _parts[k].Apply(eye(Blocks[k].Count, dtype: DType, device: Device)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public Tensor DampedInverseTimes(Tensor v, double damping)
    {
        DampedInverse.CheckDamping(damping);
        using var scope = NewDisposeScope();
        var (block, wasVector) = DampedInverse.AsBlock(v, Columns);
        block = block.to(DType, Device);
        var result = zeros_like(block);
        for (int k = 0; k < Blocks.Count; k++)
        {
            using var blockScope = NewDisposeScope();
            var b = Blocks[k];
            result.narrow(0, b.Offset, b.Count).copy_(_parts[k].Solve(block.narrow(0, b.Offset, b.Count), damping));
        }
        return (wasVector ? result.squeeze(1) : result).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public double DampedLogDeterminant(double damping)
    {
        DampedInverse.CheckDamping(damping);
        return _parts.Sum(p => p.LogDeterminant(damping));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            foreach (var part in _parts)
            {
                part.Dispose();
            }
        }
    }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        var result = zeros_like(block);
        for (int k = 0; k < Blocks.Count; k++)
        {
            using var blockScope = NewDisposeScope();
            var b = Blocks[k];
            result.narrow(0, b.Offset, b.Count).copy_(_parts[k].Apply(block.narrow(0, b.Offset, b.Count)));
        }
        return result;
    }
}
