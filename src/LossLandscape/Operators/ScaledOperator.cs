using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Operators;

/// <summary>c·A: (cA)v = c(Av). Symmetric when A is.</summary>
internal sealed class ScaledOperator : LinearOperator
{
    /// <summary>The operator <paramref name="operand"/> scaled by the finite number <paramref name="scale"/>.</summary>
    public ScaledOperator(double scale, LinearOperator operand)
        : base((operand ?? throw new ArgumentNullException(nameof(operand))).Rows, operand.Columns, operand.DType, operand.Device, operand.IsSymmetric)
    {
        if (!double.IsFinite(scale))
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "the scale must be finite");
        }
        Scale = scale;
        Operand = operand;
    }

    /// <summary>c.</summary>
    public double Scale { get; }

    /// <summary>A.</summary>
    public LinearOperator Operand { get; }

    /// <inheritdoc/>
    public override LinearOperator Adjoint() => IsSymmetric ? this : new ScaledOperator(Scale, Operand.Adjoint());

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => Operand.Apply(v).TimesInPlace(Scale);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Operand.ApplyMatrix(block).TimesInPlace(Scale);
}
