using LossLandscape.Problem;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>The outcome of <see cref="RegularValuePerturbation.Apply"/>.</summary>
/// <param name="Perturbed">The data with targets y + r.</param>
/// <param name="PerturbationNorm">|r| (strictly below ε).</param>
/// <param name="Projection">The Gauss–Newton projection onto the new M.</param>
public sealed record PerturbationResult(Dataset Perturbed, double PerturbationNorm, GaussNewtonResult Projection);

/// <summary>
/// Theorem 2.1's "generically": when 0 is not a regular value of H (rank J &lt; ℓd on M), replace the
/// targets yᵢ by yᵢ + rᵢ with |r| &lt; ε; by Sard's theorem almost every such r makes 0 a regular value
/// of the new H. The model is then moved onto the new M by minimum-norm Gauss–Newton steps.
/// </summary>
public static class RegularValuePerturbation
{
    /// <summary>Perturbs the targets by r with |r| = ε/2 in a seeded uniformly random direction and projects the model onto the new M.</summary>
    public static PerturbationResult Apply(IDifferentiableModel model, Dataset data, double epsilon, int seed, double tolerance, long memoryBudgetBytes = MemoryBudget.DefaultBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (!(epsilon > 0) || !double.IsFinite(epsilon))
        {
            throw new LandscapeInputException($"the perturbation bound ε must be a positive number, got {epsilon}");
        }
        var rng = new Random(seed);
        var r = SeededNormal.Vector(rng, data.Count * data.OutputDim);
        double norm = Math.Sqrt(r.Sum(v => v * v));
        var y = new double[data.Count, data.OutputDim];
        for (int i = 0; i < data.Count; i++)
        {
            for (int j = 0; j < data.OutputDim; j++)
            {
                y[i, j] = data.Target(i, j) + r[i * data.OutputDim + j] * (epsilon / 2) / norm;
            }
        }
        var perturbed = data.WithTargets(y, data.TargetNames);
        using var map = new ResidualMap(model, perturbed);
        var projection = GaussNewtonProjection.Project(map, new GaussNewtonOptions(tolerance, MaxSteps: 2000, MemoryBudgetBytes: memoryBudgetBytes));
        double actual = 0;
        for (int i = 0; i < data.Count; i++)
        {
            for (int j = 0; j < data.OutputDim; j++)
            {
                actual += Math.Pow(y[i, j] - data.Target(i, j), 2);
            }
        }
        return new PerturbationResult(perturbed, Math.Sqrt(actual), projection);
    }
}
