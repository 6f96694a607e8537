using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// The restriction of a square operator A (n × n) to the coordinates Offset … Offset + Count − 1: the diagonal block
/// A_BB = P_Bᵀ A P_B (Count × Count), applied as v ↦ (A [0; v; 0])_B, one product of A per vector. Symmetric when A is; its
/// spectrum and trace are a layer's, when the coordinates are a layer's parameters.
/// </summary>
/// <remarks>The per-layer view of PyHessian's issues 9 and 10 (Yao et al. 2020, "PyHessian: neural networks through the lens of the Hessian", §4 "layer-wise" analysis).</remarks>
public sealed class RestrictedOperator : LinearOperator
{
    /// <summary>A restricted to <paramref name="count"/> coordinates from <paramref name="offset"/>.</summary>
    public RestrictedOperator(LinearOperator operand, long offset, long count)
        : base(count, count, (operand ?? throw new ArgumentNullException(nameof(operand))).DType, operand.Device, operand.IsSymmetric)
    {
        if (operand.Rows != operand.Columns)
        {
            throw new ArgumentException($"a restriction is of a square operator, this one is {operand.Rows}×{operand.Columns}", nameof(operand));
        }
        if (offset < 0 || count < 1 || offset + count > operand.Columns)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"the coordinates {offset} … {offset + count - 1} are not within the operator's {operand.Columns}");
        }
        Operand = operand;
        Offset = offset;
    }

    /// <summary>A restricted to the coordinates <paramref name="indices"/> (distinct, in the block's order).</summary>
    public RestrictedOperator(LinearOperator operand, IReadOnlyList<int> indices)
        : this(operand, 0, (indices ?? throw new ArgumentNullException(nameof(indices))).Count)
    {
        if (indices.Any(i => i < 0 || i >= operand.Columns) || indices.Distinct().Count() != indices.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(indices), $"the coordinates must be distinct and within the operator's {operand.Columns}");
        }
        Indices = indices.ToArray();
    }

    /// <summary>The coordinates, when given as a list; null for Offset … Offset + Count − 1.</summary>
    public IReadOnlyList<int>? Indices { get; }

    /// <summary>A.</summary>
    public LinearOperator Operand { get; }

    /// <summary>The first coordinate.</summary>
    public long Offset { get; }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block)
    {
        var embedded = zeros(Operand.Columns, block.shape[1], dtype: DType, device: Device);
        if (Indices is { } indices)
        {
            var index = tensor(indices.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: Device);
            embedded.index_copy_(0, index, block);
            return Operand.ApplyMatrix(embedded).index_select(0, index);
        }
        embedded.narrow(0, Offset, Columns).copy_(block);
        return Operand.ApplyMatrix(embedded).narrow(0, Offset, Columns).contiguous();
    }
}
