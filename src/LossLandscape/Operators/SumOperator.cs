using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Operators;

/// <summary>A + B: (A + B)v = Av + Bv. Symmetric when both terms are.</summary>
internal sealed class SumOperator : LinearOperator
{
    /// <summary>The sum of two operators of the same shape, dtype and device.</summary>
    public SumOperator(LinearOperator left, LinearOperator right)
        : base(Check(left, right).Rows, left.Columns, left.DType, left.Device, left.IsSymmetric && right.IsSymmetric)
    {
        Left = left;
        Right = right;
    }

    /// <summary>A.</summary>
    public LinearOperator Left { get; }

    /// <summary>B.</summary>
    public LinearOperator Right { get; }

    /// <inheritdoc/>
    public override LinearOperator Adjoint() => IsSymmetric ? this : new SumOperator(Left.Adjoint(), Right.Adjoint());

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => Left.Apply(v).PlusInPlace(Right.Apply(v));

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Left.ApplyMatrix(block).PlusInPlace(Right.ApplyMatrix(block));

    private static LinearOperator Check(LinearOperator left, LinearOperator right)
    {
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(right);
        if (left.Rows != right.Rows || left.Columns != right.Columns)
        {
            throw new ArgumentException($"cannot add a {left.Rows}×{left.Columns} operator and a {right.Rows}×{right.Columns} one");
        }
        if (left.DType != right.DType || left.Device.type != right.Device.type || left.Device.index != right.Device.index)
        {
            throw new ArgumentException($"cannot add operators of dtypes/devices {left.DType}/{left.Device} and {right.DType}/{right.Device}");
        }
        return left;
    }
}
