using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Models.Activations;

/// <summary>ReLU(x) = max(x, 0): rectified (Definition 3.1) but not smooth; σ′(0) is taken as 0.</summary>
public sealed class Relu : Activation
{
    /// <inheritdoc/>
    public override string Name => "relu";

    /// <inheritdoc/>
    public override bool IsRectified => true;

    /// <inheritdoc/>
    public override bool IsSmooth => false;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor x) => nn.functional.relu(x);

    /// <inheritdoc/>
    public override Tensor Derivative(Tensor x) => x.Above(0.0).to_type(x.dtype);

    /// <inheritdoc/>
    public override Tensor SecondDerivative(Tensor x) => zeros_like(x);

    /// <inheritdoc/>
    public override double Value(double x) => x > 0 ? x : 0.0;

    /// <inheritdoc/>
    public override double DerivativeValue(double x) => x > 0 ? 1.0 : 0.0;

    /// <inheritdoc/>
    public override double SecondDerivativeValue(double x) => 0.0;
}

/// <summary>
/// softplus(x) = log(1 + eˣ): smooth, not rectified. σ′ = sigmoid, σ″ = s(1 − s).
/// Computed as max(x, 0) + log1p(e^{−|x|}), which neither overflows nor loses the tail.
/// </summary>
public sealed class Softplus : Activation
{
    /// <inheritdoc/>
    public override string Name => "softplus";

    /// <inheritdoc/>
    public override bool IsRectified => false;

    /// <inheritdoc/>
    public override bool IsSmooth => true;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor x)
    {
        using var scope = NewDisposeScope();
        return nn.functional.relu(x).Plus(log1p(exp(-x.abs()))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor Derivative(Tensor x) => sigmoid(x);

    /// <inheritdoc/>
    public override Tensor SecondDerivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var s = sigmoid(x);
        return (s * s.SubtractedFrom(1.0)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double Value(double x) => Math.Max(x, 0.0) + Math.Log(1.0 + Math.Exp(-Math.Abs(x)));

    /// <inheritdoc/>
    public override double DerivativeValue(double x) => Logistic(x);

    /// <inheritdoc/>
    public override double SecondDerivativeValue(double x) => Logistic(x) * Logistic(-x);

    internal static double Logistic(double x) => x >= 0 ? 1.0 / (1.0 + Math.Exp(-x)) : Math.Exp(x) / (1.0 + Math.Exp(x));
}

/// <summary>tanh: smooth, not rectified. σ′ = 1 − tanh², σ″ = −2 tanh (1 − tanh²).</summary>
public sealed class Tanh : Activation
{
    /// <inheritdoc/>
    public override string Name => "tanh";

    /// <inheritdoc/>
    public override bool IsRectified => false;

    /// <inheritdoc/>
    public override bool IsSmooth => true;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor x) => tanh(x);

    /// <inheritdoc/>
    public override Tensor Derivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var t = tanh(x);
        return (t * t).SubtractedFrom(1.0).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor SecondDerivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var t = tanh(x);
        return (t.Times(-2.0) * (t * t).SubtractedFrom(1.0)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double Value(double x) => Math.Tanh(x);

    /// <inheritdoc/>
    public override double DerivativeValue(double x) => 1.0 - Math.Tanh(x) * Math.Tanh(x);

    /// <inheritdoc/>
    public override double SecondDerivativeValue(double x) => -2.0 * Math.Tanh(x) * (1.0 - Math.Tanh(x) * Math.Tanh(x));
}

/// <summary>The logistic sigmoid s(x) = 1/(1 + e^{−x}): smooth, not rectified. σ′ = s(1 − s), σ″ = s(1 − s)(1 − 2s).</summary>
public sealed class Sigmoid : Activation
{
    /// <inheritdoc/>
    public override string Name => "sigmoid";

    /// <inheritdoc/>
    public override bool IsRectified => false;

    /// <inheritdoc/>
    public override bool IsSmooth => true;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor x) => sigmoid(x);

    /// <inheritdoc/>
    public override Tensor Derivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var s = sigmoid(x);
        return (s * s.SubtractedFrom(1.0)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor SecondDerivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var s = sigmoid(x);
        return (s * s.SubtractedFrom(1.0) * s.Times(2.0).SubtractedFrom(1.0)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double Value(double x) => Softplus.Logistic(x);

    /// <inheritdoc/>
    public override double DerivativeValue(double x) => Softplus.Logistic(x) * Softplus.Logistic(-x);

    /// <inheritdoc/>
    public override double SecondDerivativeValue(double x) => DerivativeValue(x) * (1.0 - 2.0 * Softplus.Logistic(x));
}
