using TorchSharp;
using static TorchSharp.torch;

namespace LossLandscape.Engine;

/// <summary>
/// Tensor arithmetic with numbers, each number held as a <see cref="Scalar"/> that stays alive until the native call has
/// returned. Use these instead of TorchSharp's operators and overloads that take a .NET number.
/// </summary>
/// <remarks>
/// <para>TorchSharp 0.107 turns a number into a native <c>c10::Scalar</c> wrapped in a finalizable <see cref="Scalar"/>
/// and passes only its handle to libtorch. Nothing references the wrapper after that. A garbage collection during the
/// native call, triggered by any other thread (the finalizer thread included), finalizes it and frees the c10::Scalar
/// while libtorch reads it. This happens with implicit conversions (<c>t.mul_(2.0)</c>), with the operators
/// (<c>t * x</c>, <c>t / x</c>), and with the overloads that add a hidden α = 1 or p = 2 (<c>a + b</c>,
/// <c>add_(b)</c>, <c>linalg.vector_norm(v)</c>). libtorch then failed with "Unknown scalar type" in 2 of 8 runs of
/// <c>spectrum --method lanczos --k 200</c> on digits (exit 70), and it could have read a wrong value.</para>
/// <para>Here each number becomes a Scalar in a <c>using</c>, which references it until the call returns. The freed
/// wrappers are the ones TorchSharp's own later versions dispose at once (dotnet/TorchSharp pull requests 1434 and 1496).
/// <c>ScalarArithmeticTests</c> scans the library's IL for calls to the unsafe members.</para>
/// </remarks>
internal static class ScalarArithmetic
{
    /// <summary>t·a.</summary>
    public static Tensor Times(this Tensor t, double a) => WithScalar(a, s => t.mul(s));

    /// <summary>t ← t·a, in place.</summary>
    public static Tensor TimesInPlace(this Tensor t, double a) => WithScalar(a, s => t.mul_(s));

    /// <summary>t/a.</summary>
    public static Tensor Over(this Tensor t, double a) => WithScalar(a, s => t.div(s));

    /// <summary>t ← t/a, in place.</summary>
    public static Tensor OverInPlace(this Tensor t, double a) => WithScalar(a, s => t.div_(s));

    /// <summary>⌊t/a⌋ in place (integer tensors: the floor division).</summary>
    public static Tensor FloorOverInPlace(this Tensor t, long a)
    {
        using var s = a.ToScalar(); // an integer Scalar: the quotient of integer tensors stays integer
        return t.div_(s, RoundingMode.floor);
    }

    /// <summary>t + a.</summary>
    public static Tensor Plus(this Tensor t, double a) => WithScalar(a, s => WithOne(one => t.add(s, one)));

    /// <summary>t ← t + a, in place.</summary>
    public static Tensor PlusInPlace(this Tensor t, double a) => WithScalar(a, s => WithOne(one => t.add_(s, one)));

    /// <summary>t − a.</summary>
    public static Tensor Minus(this Tensor t, double a) => WithScalar(a, s => t.sub(s));

    /// <summary>t ← t − a, in place.</summary>
    public static Tensor MinusInPlace(this Tensor t, double a) => WithScalar(a, s => t.sub_(s));

    /// <summary>a − t.</summary>
    public static Tensor SubtractedFrom(this Tensor t, double a) => WithScalar(a, s => WithOne(one => t.neg().add_(s, one)));

    /// <summary>a + b (TorchSharp's <c>a + b</c> and <c>add(b)</c> create α = 1 unsafely).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => WithOne(one => a.add(b, one));

    /// <summary>a ← a + b, in place.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => WithOne(one => a.add_(b, one));

    /// <summary>a ← a + α·b, in place.</summary>
    public static Tensor PlusScaledInPlace(this Tensor a, Tensor b, double alpha) => WithScalar(alpha, s => a.add_(b, s));

    /// <summary>t^e, elementwise.</summary>
    public static Tensor Power(this Tensor t, double e) => WithScalar(e, s => t.pow(s));

    /// <summary>t &gt; a, elementwise.</summary>
    public static Tensor Above(this Tensor t, double a) => WithScalar(a, s => t.gt(s));

    /// <summary>t ≠ a, elementwise.</summary>
    public static Tensor Unequal(this Tensor t, double a) => WithScalar(a, s => t.ne(s));

    /// <summary>A tensor shaped as t, every entry a.</summary>
    public static Tensor FilledLike(this Tensor t, double a) => WithScalar(a, s => full_like(t, s));

    /// <summary>‖t‖₂ over all entries (as <c>linalg.vector_norm(t)</c>, whose p = 2 is created unsafely).</summary>
    public static Tensor Norm2(this Tensor t) => t.norm(2.0f);

    /// <summary>‖column j‖₂ of a matrix, for each j.</summary>
    public static Tensor ColumnNorms(this Tensor t) => t.norm(0, false, 2.0f);

    /// <summary>start, start + step, … before stop, of type <paramref name="dtype"/>.</summary>
    public static Tensor Range(long start, long stop, long step, ScalarType dtype)
    {
        using var a = start.ToScalar();
        using var b = stop.ToScalar();
        using var c = step.ToScalar();
        return arange(a, b, c, dtype);
    }

    /// <summary>max(t, a), elementwise.</summary>
    public static Tensor AtLeast(this Tensor t, double a) => WithScalar(a, s => t.clamp_min(s));

    /// <summary>
    /// <paramref name="use"/>(a) with the number a held as a Scalar until it returns: for the TorchSharp members without a helper
    /// here (<c>index_add_</c>'s α, <c>fill_</c>, <c>addcmul_</c>'s value).
    /// </summary>
    public static T WithScalar<T>(double a, Func<Scalar, T> use)
    {
        ArgumentNullException.ThrowIfNull(use);
        using var s = a.ToScalar();
        return use(s);
    }

    /// <summary><paramref name="use"/>(1) with the integer Scalar 1 (the α of an addition; valid for integer tensors too) held until it returns.</summary>
    private static T WithOne<T>(Func<Scalar, T> use)
    {
        using var one = 1.ToScalar();
        return use(one);
    }
}
