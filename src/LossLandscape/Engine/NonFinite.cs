using System.Globalization;
using static TorchSharp.torch;

namespace LossLandscape.Engine;

/// <summary>
/// The one rule for values that leave float64's range: a non-finite loss, residual, gradient or estimate is refused
/// with a <see cref="LandscapeInputException"/> whose one line names the quantity (and, for the forward pass of an
/// MLP, the first layer whose output overflows), never returned as a result; so is a loss that underflows to 0 while
/// the residuals are not 0 (<c>Problem.FiniteLoss</c>). The CLI maps it to exit 2.
/// </summary>
/// <remarks>
/// A point whose loss is ∞ or NaN has no geometry to measure: every quantity of the paper (L, ∇L, J, ∇²L and their
/// spectra) is then NaN or an arithmetic exception inside LAPACK. The causes are the user's to fix: a parameter near
/// float64's maximum 1.8·10³⁰⁸, an input scale near its minimum (so scaled inputs overflow), or a loss exponent a so
/// large that |H_k|^a overflows (IEEE 754-2019, §7.4: overflow rounds to ±∞), or, for |H_k| &lt; 1, so large that every
/// |H_k|^a underflows to 0 (§7.5) and L = 0 would claim a point of M.
/// </remarks>
public static class NonFinite
{
    /// <summary>Returns <paramref name="value"/> when it is finite; otherwise refuses naming <paramref name="quantity"/>.</summary>
    /// <param name="value">The value computed.</param>
    /// <param name="quantity">What it is, in the user's words (e.g. "the gradient norm ‖∇L‖").</param>
    /// <param name="cause">Optional: what overflowed or how to avoid it, appended after a semicolon.</param>
    /// <exception cref="LandscapeInputException">The value is NaN or ±∞.</exception>
    public static double Require(double value, string quantity, string? cause = null)
    {
        ArgumentNullException.ThrowIfNull(quantity);
        if (double.IsFinite(value))
        {
            return value;
        }
        throw new LandscapeInputException(Message(quantity, value, cause));
    }

    /// <summary>Refuses when any of <paramref name="values"/> is not finite, naming <paramref name="quantity"/> and the first such index.</summary>
    /// <exception cref="LandscapeInputException">A value is NaN or ±∞.</exception>
    public static void RequireAll(IReadOnlyList<double> values, string quantity, string? cause = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(quantity);
        for (int i = 0; i < values.Count; i++)
        {
            if (!double.IsFinite(values[i]))
            {
                throw new LandscapeInputException(Message($"{quantity} (entry {i})", values[i], cause));
            }
        }
    }

    internal static string Message(string quantity, double value, string? cause) =>
        $"{quantity} is not finite ({(double.IsNaN(value) ? "NaN" : value > 0 ? "+∞" : "−∞")})" + (cause is null ? "" : $"; {cause}");

    internal static string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
