using System.Globalization;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Engine;

/// <summary>
/// The one rule for values that leave float64's range: a non-finite loss, residual, gradient or estimate is refused
/// with a <see cref="LandscapeInputException"/> whose one line names the quantity (and, for the forward pass of an
/// MLP, the first layer whose output overflows), never returned as a result. The CLI maps it to exit 2.
/// </summary>
/// <remarks>
/// A point whose loss is ∞ or NaN has no geometry to measure: every quantity of the paper (L, ∇L, J, ∇²L and their
/// spectra) is then NaN or an arithmetic exception inside LAPACK. The causes are the user's to fix: a parameter near
/// float64's maximum 1.8·10³⁰⁸, an input scale near its minimum (so scaled inputs overflow), or a loss exponent a so
/// large that |H_k|^a overflows (IEEE 754-2019, §7.4: overflow rounds to ±∞).
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
    /// Refuses a point where the residuals H or the loss L of <paramref name="map"/> are not finite, naming what
    /// overflowed: the scaled inputs, the output of a layer (for an <see cref="Mlp"/>), the residuals, or the loss
    /// Σ|H_k|^a with its exponent. One forward pass when the point is finite.
    /// </summary>
    /// <exception cref="LandscapeInputException">H or L is not finite at the map's point.</exception>
    public static void RequireFinitePoint(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        var h = map.Residuals();
        if (!isfinite(h).all().item<bool>())
        {
            throw new LandscapeInputException($"the residuals H (network outputs minus targets) are not finite at this point: {Diagnose(map)}");
        }
        double loss = map.Loss();
        if (!double.IsFinite(loss))
        {
            double maxH = h.numel() == 0 ? 0 : h.abs().max().item<double>();
            throw new LandscapeInputException(Message($"the loss L = Σ|H_k|^a (a = {G(map.Exponent)}, max|H_k| = {G(maxH)})", loss,
                "|H_k|^a overflows float64; use a smaller exponent or rescale the targets"));
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
