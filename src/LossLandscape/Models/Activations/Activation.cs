using static TorchSharp.torch;

namespace LossLandscape.Models.Activations;

/// <summary>
/// An activation σ: ℝ → ℝ applied elementwise at the internal vertices of a feedforward network,
/// with its first two derivatives in closed form.
/// </summary>
/// <remarks>
/// <see cref="Apply"/> is built from operations that autograd differentiates twice without NaN
/// (double backward is how Hessian-vector products are taken); <see cref="Derivative"/> and
/// <see cref="SecondDerivative"/> are the closed forms used by the batched Jacobian and by tests.
/// </remarks>
public abstract class Activation
{
    /// <summary>The name used in model files and on the command line, e.g. <c>smoolu</c>.</summary>
    public abstract string Name { get; }

    /// <summary>
    /// Rectified in the sense of Definition 3.1 of the paper: continuous, σ(x) = 0 for x ≤ 0 and
    /// monotonic increasing for x &gt; 0. Lemma 3.3's construction needs it.
    /// </summary>
    public abstract bool IsRectified { get; }

    /// <summary>σ is C^∞ on all of ℝ (Theorem 4.1 needs a rectified smooth σ).</summary>
    public abstract bool IsSmooth { get; }

    /// <summary>σ(x), elementwise, differentiable twice by autograd.</summary>
    public abstract Tensor Apply(Tensor x);

    /// <summary>σ′(x), elementwise (the one-sided value where σ′ jumps).</summary>
    public abstract Tensor Derivative(Tensor x);

    /// <summary>σ″(x), elementwise (0 at kinks, by convention).</summary>
    public abstract Tensor SecondDerivative(Tensor x);

    /// <summary>σ(x) for one double.</summary>
    public abstract double Value(double x);

    /// <summary>σ′(x) for one double.</summary>
    public abstract double DerivativeValue(double x);

    /// <summary>σ″(x) for one double.</summary>
    public abstract double SecondDerivativeValue(double x);

    /// <inheritdoc/>
    public override string ToString() => Name;
}
