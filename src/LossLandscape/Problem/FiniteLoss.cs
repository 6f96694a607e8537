using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Problem;

/// <summary>
/// <see cref="NonFinite"/>'s rule for the loss of a problem at a point: a loss or residual that leaves float64's range is
/// refused naming what overflowed, and so is a loss that underflows to 0 while the residuals are not 0.
/// </summary>
public static class FiniteLoss
{
    /// <summary>
    /// Refuses a point where the residuals H or the loss L of <paramref name="map"/> are not finite, or where L underflows
    /// to 0 while a residual is not 0 (<see cref="Require"/> at the map's point). One forward pass when L is finite
    /// and positive.
    /// </summary>
    /// <exception cref="LandscapeInputException">H or L is not finite at the map's point, or L underflows to 0.</exception>
    public static void RequirePoint(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        Require(map, map.Loss(), "at this point");
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
    public static void Require(IResidualProblem map, double loss, string where, string? remedy = null)
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
        if (!map.LossFunction.IsResidualSum)
        {
            // A mean loss of the outputs (cross-entropy) may be 0 exactly (one class); only a value that is not finite is refused.
            if (!double.IsFinite(loss))
            {
                throw new LandscapeInputException($"{NonFinite.Message($"the loss L ({map.LossFunction.Name})", loss, null)} {where}; {remedy ?? "the outputs overflow float64"}");
            }
            return;
        }
        string quantity = $"the loss L = Σ|H_k|^a (a = {NonFinite.G(map.Exponent)}, max|H_k| = {NonFinite.G(maxH)})";
        remedy ??= "use a smaller exponent or rescale the targets";
        if (!double.IsFinite(loss))
        {
            throw new LandscapeInputException($"{NonFinite.Message(quantity, loss, null)} {where}; |H_k|^a overflows float64; {remedy}");
        }
        if (maxH > 0)
        {
            throw new LandscapeInputException($"{quantity} underflows to 0 {where} though the residuals are not 0: |H_k|^a is below float64's smallest number 4.9e-324 for every k; {remedy}");
        }
    }

    /// <summary>Where the forward pass of <paramref name="map"/>'s model leaves float64's range, in words.</summary>
    internal static string Diagnose(IResidualProblem map)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (map.Model is not NetworkModel { Network: Mlp mlp } model)
        {
            return "the forward pass overflows float64; check the parameters and the input scale";
        }
        var p = model.Parameters.detach();
        double maxParameter = p.numel() == 0 ? 0 : p.abs().max().item<double>();
        string largest = $"max |parameter| = {NonFinite.G(maxParameter)}";
        if (!double.IsFinite(maxParameter))
        {
            return $"a parameter is not finite ({largest})";
        }
        var x = map.Data.Read(0, map.Data.Count).Inputs.reshape(map.Data.Count, -1);
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

}
