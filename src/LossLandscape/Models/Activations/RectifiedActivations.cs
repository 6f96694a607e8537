using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Models.Activations;

/// <summary>
/// An activation "translated and truncated" to be rectified (Section 3.1 of the paper): g(x) − g(0)
/// for x &gt; 0 and 0 for x ≤ 0, for an increasing smooth g. The result is rectified (Definition 3.1)
/// and continuous, but only C⁰ at 0: its one-sided derivative there is g′(0) ≠ 0, so it is flagged
/// not smooth.
/// </summary>
public abstract class TruncatedActivation : Activation
{
    /// <inheritdoc/>
    public override bool IsRectified => true;

    /// <inheritdoc/>
    public override bool IsSmooth => false;

    /// <summary>g(x) − g(0), valid for every x.</summary>
    protected abstract Tensor Shifted(Tensor x);

    /// <summary>g′(x).</summary>
    protected abstract Tensor First(Tensor x);

    /// <summary>g″(x).</summary>
    protected abstract Tensor Second(Tensor x);

    /// <summary>g(x) − g(0) for one double.</summary>
    protected abstract double Shifted(double x);

    /// <summary>g′(x) for one double.</summary>
    protected abstract double First(double x);

    /// <summary>g″(x) for one double.</summary>
    protected abstract double Second(double x);

    /// <inheritdoc/>
    public override Tensor Apply(Tensor x) => Masked(x, Shifted);

    /// <inheritdoc/>
    public override Tensor Derivative(Tensor x) => Masked(x, First);

    /// <inheritdoc/>
    public override Tensor SecondDerivative(Tensor x) => Masked(x, Second);

    /// <inheritdoc/>
    public override double Value(double x) => x > 0 ? Shifted(x) : 0.0;

    /// <inheritdoc/>
    public override double DerivativeValue(double x) => x > 0 ? First(x) : 0.0;

    /// <inheritdoc/>
    public override double SecondDerivativeValue(double x) => x > 0 ? Second(x) : 0.0;

    private static Tensor Masked(Tensor x, Func<Tensor, Tensor> g)
    {
        using var scope = NewDisposeScope();
        // g is finite everywhere, so the masked branch contributes exact zeros to any derivative.
        return where(x.Above(0.0), g(x), zeros_like(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>Rectified tanh: tanh(x) for x &gt; 0, 0 otherwise (Section 3.1 of the paper).</summary>
public sealed class RectifiedTanh : TruncatedActivation
{
    private static readonly Tanh G = new();

    /// <inheritdoc/>
    public override string Name => "rectified-tanh";

    /// <inheritdoc/>
    protected override Tensor Shifted(Tensor x) => G.Apply(x);

    /// <inheritdoc/>
    protected override Tensor First(Tensor x) => G.Derivative(x);

    /// <inheritdoc/>
    protected override Tensor Second(Tensor x) => G.SecondDerivative(x);

    /// <inheritdoc/>
    protected override double Shifted(double x) => G.Value(x);

    /// <inheritdoc/>
    protected override double First(double x) => G.DerivativeValue(x);

    /// <inheritdoc/>
    protected override double Second(double x) => G.SecondDerivativeValue(x);
}

/// <summary>Rectified sigmoid: sigmoid(x) − ½ for x &gt; 0, 0 otherwise (Section 3.1 of the paper).</summary>
public sealed class RectifiedSigmoid : TruncatedActivation
{
    private static readonly Sigmoid G = new();

    /// <inheritdoc/>
    public override string Name => "rectified-sigmoid";

    /// <inheritdoc/>
    protected override Tensor Shifted(Tensor x)
    {
        using var scope = NewDisposeScope();
        return G.Apply(x).Minus(0.5).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    protected override Tensor First(Tensor x) => G.Derivative(x);

    /// <inheritdoc/>
    protected override Tensor Second(Tensor x) => G.SecondDerivative(x);

    /// <inheritdoc/>
    protected override double Shifted(double x) => G.Value(x) - 0.5;

    /// <inheritdoc/>
    protected override double First(double x) => G.DerivativeValue(x);

    /// <inheritdoc/>
    protected override double Second(double x) => G.SecondDerivativeValue(x);
}
