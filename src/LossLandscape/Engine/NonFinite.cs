using System.Globalization;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Engine;

/// <summary>
/// The one rule for values that leave float64's range: a non-finite loss, residual, gradient or estimate is refused
/// with a <see cref="LandscapeInputException"/> whose one line names the quantity (and, for the forward pass of an
/// MLP, the first layer whose output overflows), never returned as a result; so is a loss that underflows to 0 while
/// the residuals are not 0 (<see cref="RequireLoss"/>). The CLI maps it to exit 2.
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

    /// <summary>
    /// Refuses a point where the residuals H or the loss L of <paramref name="map"/> are not finite, or where L underflows
    /// to 0 while a residual is not 0 (<see cref="RequireLoss"/> at the map's point). One forward pass when L is finite
    /// and positive.
    /// </summary>
    /// <exception cref="LandscapeInputException">H or L is not finite at the map's point, or L underflows to 0.</exception>
    public static void RequireFinitePoint(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        RequireLoss(map, map.Loss(), "at this point");
    }

    /// <summary>
    /// The one rule for a loss L = Σ|H_k|^a computed at <paramref name="map"/>'s current point: refused when it is not
    /// finite, naming what overflowed (the scaled inputs, the output of a layer for an <see cref="Mlp"/>, the residuals,
    /// or |H_k|^a with the exponent a), and refused when it is 0 while some H_k is not, naming the exponent: every
    /// |H_k|^a then fell below float64's smallest subnormal 4.9·10⁻³²⁴ and rounded to 0 (IEEE 754-2019, §7.5), so 0
    /// would read as "on M" where the point is not. A loss that is finite and positive costs nothing more.
    /// </summary>
    /// <param name="map">The map, at the point <paramref name="loss"/> was computed at.</param>
    /// <param name="loss">L at that point.</param>
    /// <param name="where">Where, in the user's words, following the verdict (e.g. "at this point", "at the slice's grid point α = 1").</param>
    /// <param name="remedy">What to change, ending the line; default: a smaller exponent or rescaled targets for L, none for H.</param>
    /// <exception cref="LandscapeInputException">L is not finite, or L = 0 while max|H_k| &gt; 0.</exception>
    public static void RequireLoss(ResidualMap map, double loss, string where, string? remedy = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(where);
        if (double.IsFinite(loss) && loss != 0)
        {
            return;
        }
        using var scope = NewDisposeScope();
        var h = map.Residuals();
        if (!isfinite(h).all().item<bool>())
        {
            throw new LandscapeInputException($"the residuals H (network outputs minus targets) are not finite {where}: {Diagnose(map)}" + (remedy is null ? "" : $"; {remedy}"));
        }
        double maxH = h.numel() == 0 ? 0 : h.abs().max().item<double>();
        string quantity = $"the loss L = Σ|H_k|^a (a = {G(map.Exponent)}, max|H_k| = {G(maxH)})";
        remedy ??= "use a smaller exponent or rescale the targets";
        if (!double.IsFinite(loss))
        {
            throw new LandscapeInputException($"{Message(quantity, loss, null)} {where}; |H_k|^a overflows float64; {remedy}");
        }
        if (maxH > 0)
        {
            throw new LandscapeInputException($"{quantity} underflows to 0 {where} though the residuals are not 0: |H_k|^a is below float64's smallest number 4.9e-324 for every k; {remedy}");
        }
    }

    /// <summary>Where the forward pass of <paramref name="map"/>'s model leaves float64's range, in words.</summary>
    internal static string Diagnose(ResidualMap map)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (map.Model is not NetworkModel { Network: Mlp mlp } model)
        {
            return "the forward pass overflows float64; check the parameters and the input scale";
        }
        var p = model.Parameters.detach();
        double maxParameter = p.numel() == 0 ? 0 : p.abs().max().item<double>();
        string largest = $"max |parameter| = {G(maxParameter)}";
        if (!double.IsFinite(maxParameter))
        {
            return $"a parameter is not finite ({largest})";
        }
        var x = map.Data.InputsTensor();
        if (!isfinite(mlp.LayerInput(p, x, 0)).all().item<bool>())
        {
            return "the scaled inputs overflow float64 (the model's input scale divides by a number too close to 0)";
        }
        for (int k = 1; k < mlp.Layers.Count; k++)
        {
            if (!isfinite(mlp.LayerInput(p, x, k)).all().item<bool>())
            {
                return $"the output of layer {k} of {mlp.Layers.Count} overflows float64 ({largest})";
            }
        }
        return $"the output layer ({mlp.Layers.Count} of {mlp.Layers.Count}) overflows float64 ({largest})";
    }

    private static string Message(string quantity, double value, string? cause) =>
        $"{quantity} is not finite ({(double.IsNaN(value) ? "NaN" : value > 0 ? "+∞" : "−∞")})" + (cause is null ? "" : $"; {cause}");

    private static string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
