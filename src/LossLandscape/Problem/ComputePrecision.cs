using LossLandscape.Models;

namespace LossLandscape.Problem;

/// <summary>
/// The one rule for decisions that need float64: a rank, an inertia, a count of zero eigenvalues is decided against a
/// tolerance of a few float64 units in the last place, so a model that computes in float32 (a TorchScript module opened
/// with <c>--dtype float32</c>, <see cref="TorchScriptNetwork"/>) cannot take them: its numbers carry errors of about
/// 1e−7 relative, far above the gap the decision reads.
/// </summary>
public static class ComputePrecision
{
    /// <summary>Whether the problem's model computes in float64 (every model but a TorchScript module opened in float32).</summary>
    public static bool IsFloat64(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return map.Model is not NetworkModel { Network.ComputesInFloat64: false };
    }

    /// <summary>Refuses <paramref name="what"/> in one line when the model computes in float32.</summary>
    /// <exception cref="LandscapeInputException">The model computes in float32.</exception>
    public static void RequireFloat64(IResidualProblem map, string what)
    {
        ArgumentNullException.ThrowIfNull(what);
        if (!IsFloat64(map))
        {
            throw new LandscapeInputException($"{what} decides ranks and signs against float64 round-off, and this model computes in float32 (errors near 1e-7); open it in float64");
        }
    }
}
