using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Models.Activations;

/// <summary>
/// smooLU(x) = 0 for x ≤ 0, x·e^{−1/x} for x &gt; 0: a rectified C^∞ activation, all of whose
/// derivatives vanish at 0. smooLU′(x) = e^{−1/x}(1 + 1/x), smooLU″(x) = e^{−1/x}/x³ for x &gt; 0.
/// </summary>
/// <remarks>
/// Definition 3.2 of the paper. Numerics: for 0 &lt; x ≤ <see cref="Cutoff"/> = 1/700 every one of
/// σ, σ′, σ″ is below e^{−700}·700³ ≈ 3·10⁻²⁹⁶, so they are returned as exactly 0; above the cutoff
/// 1/x ≤ 700 and 1/x³ ≤ 3.4·10⁸, so no intermediate overflows, and the masked branch is evaluated at
/// the safe stand-in x = 1 so that double backward through <c>where</c> never meets 0·∞.
/// </remarks>
public sealed class SmooLU : Activation
{
    /// <summary>Below this argument σ, σ′ and σ″ underflow to (within 3·10⁻²⁹⁶ of) zero.</summary>
    public const double Cutoff = 1.0 / 700.0;

    /// <inheritdoc/>
    public override string Name => "smoolu";

    /// <inheritdoc/>
    public override bool IsRectified => true;

    /// <inheritdoc/>
    public override bool IsSmooth => true;

    /// <inheritdoc/>
    /// <remarks>
    /// Without autograd (a forward pass under <c>no_grad</c>, or on a tensor that needs no gradient) the same operations
    /// run in place on one buffer, so that σ of a d × h layer holds two tensors of that size besides x instead of about seven
    /// (for digits with h = 10·d: 0.5 GB instead of 1.8 GB); the values are bitwise the same.
    /// </remarks>
    public override Tensor Apply(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (!(x.requires_grad && is_grad_enabled()))
        {
            // Scalars held in variables until the end of the block: a Scalar made by implicit conversion is unreachable while
            // the native call runs, and a garbage collection then (frequent under parallel tests) may finalize it mid-call
            // (see ScalarArithmetic).
            using var cutoff = TorchSharp.ScalarExtensionMethods.ToScalar(Cutoff);
            using var one = TorchSharp.ScalarExtensionMethods.ToScalar(1.0);
            using var zero = TorchSharp.ScalarExtensionMethods.ToScalar(0.0);
            var outside = x.gt(cutoff).logical_not_();
            var stand = x.masked_fill(outside, one);
            // x·e^{−1/x} on the stand-in, then 0 where x ≤ Cutoff: the where below, one buffer at a time.
            var result = stand.reciprocal().neg_().exp_().mul_(stand).masked_fill_(outside, zero).MoveToOuterDisposeScope();
            GC.KeepAlive(cutoff);
            GC.KeepAlive(one);
            GC.KeepAlive(zero);
            return result;
        }
        var (mask, safe) = Safe(x);
        return where(mask, safe * exp(-safe.reciprocal()), zeros_like(x)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor Derivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (mask, safe) = Safe(x);
        var inv = safe.reciprocal();
        return where(mask, exp(-inv) * inv.Plus(1.0), zeros_like(x)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor SecondDerivative(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (mask, safe) = Safe(x);
        var inv = safe.reciprocal();
        return where(mask, exp(-inv) * inv.Power(3), zeros_like(x)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double Value(double x) => x > Cutoff ? x * Math.Exp(-1.0 / x) : 0.0;

    /// <inheritdoc/>
    public override double DerivativeValue(double x) => x > Cutoff ? Math.Exp(-1.0 / x) * (1.0 + 1.0 / x) : 0.0;

    /// <inheritdoc/>
    public override double SecondDerivativeValue(double x) => x > Cutoff ? Math.Exp(-1.0 / x) / (x * x * x) : 0.0;

    private static (Tensor Mask, Tensor Safe) Safe(Tensor x)
    {
        var mask = x.Above(Cutoff);
        return (mask, where(mask, x, ones_like(x)));
    }
}
