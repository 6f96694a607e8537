using LossLandscape.Problem;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Construction;

/// <summary>What the polish did.</summary>
/// <param name="OutputLayerSteps">Gauss–Newton steps on the output layer alone.</param>
/// <param name="FullSteps">Full minimum-norm Gauss–Newton steps p ← p − J⁺H.</param>
/// <param name="FullStepsSkipped">Why full steps were not taken, or null.</param>
internal readonly record struct PolishOutcome(int OutputLayerSteps, int FullSteps, string? FullStepsSkipped);

/// <summary>
/// The polish after Lemma 3.3's triangular solve: Gauss–Newton steps, first on the output layer alone (iterative
/// refinement of the triangular solve in the arithmetic of the network's own forward pass), then on all parameters
/// (<see cref="GaussNewtonProjection"/>) when the factorization of J fits the memory budget. Every H, every product with J
/// and its factors is the problem's, and the point moves only through it (<see cref="IResidualProblem.SetPoint"/>), so a
/// sharded problem polishes where its rows are; only Φ, the last hidden layer's activations of the output-layer steps, is
/// formed here from the data.
/// </summary>
internal static class GaussNewtonPolish
{
    /// <summary>
    /// The polish aims this far below the goal (10⁻³), so the written network still meets the goal after the model
    /// file's round trip and in another BLAS's summation order, both of which move f(xᵢ) by rounding.
    /// </summary>
    public const double GoalMargin = 1e-3;

    /// <summary>
    /// Output-layer steps at most: 4. Iterative refinement in working precision gains a factor of about ε·κ(Φ) per step
    /// (Higham, Accuracy and Stability of Numerical Algorithms, 2002, §12.1); from the triangular
    /// solve's residual four steps reach the rounding floor for κ up to 1e12 (<see cref="Lemma33TriangularSystem.DiagonalFloor"/>).
    /// </summary>
    public const int OutputLayerSteps = 4;

    /// <summary>
    /// Full Gauss–Newton steps at most: 8. They start within the quadratic region (the output-layer polish leaves
    /// rounding-level residuals), where a handful of steps reach the floor; each factors J once.
    /// </summary>
    public const int FullSteps = 8;

    /// <summary>
    /// Polishes <paramref name="map"/>'s point towards max|H| ≤ GoalMargin·goal; <paramref name="current"/> is max|H| now. Full
    /// steps are taken when the factorization of J fits the budget of <paramref name="limits"/>, whose token is checked
    /// before each of them.
    /// </summary>
    public static PolishOutcome Run(Mlp mlp, IResidualProblem map, Dataset data, int[] order, double current, double goal, RunLimits? limits = null)
    {
        limits ??= RunLimits.Default;
        using var scope = NewDisposeScope();
        int outputSteps = 0, fullSteps = 0;
        string? skipped = null;
        double target = goal * GoalMargin;
        for (int step = 0; step < OutputLayerSteps && current > target; step++)
        {
            using var stepScope = NewDisposeScope();
            var before = map.GetPoint();
            OutputLayerStep(mlp, map, data, order);
            double next = map.MaxAbsResidual();
            if (!(next < current))
            {
                map.SetPoint(before);
                break;
            }
            current = next;
            outputSteps++;
        }

        // Full minimum-norm steps p ← p − J⁺H(p), when the factorization of J fits the budget.
        var route = JacobianFactorization.ChooseRoute(map, limits);
        try
        {
            limits.Require($"full Gauss–Newton steps (factoring J, {map.Constraints} × {map.ParameterCount})", JacobianFactorization.RequiredBytes(map, route),
                "polished the output layer only");
        }
        catch (MemoryBudgetExceededException e)
        {
            skipped = e.Message;
        }
        if (skipped is null && current > target)
        {
            fullSteps = GaussNewtonProjection.ProjectBy(map, new GaussNewtonOptions(target, FullSteps), route, limits).Steps;
        }
        return new PolishOutcome(outputSteps, fullSteps, skipped);
    }

    /// <summary>
    /// One Gauss–Newton step on the output layer: per output, the lower-triangular solve Φ δ = H with Φ the network's
    /// own last-hidden-layer activations in the sorted order (the first d units) and H the problem's, and W_out ← W_out − δᵀ.
    /// </summary>
    private static void OutputLayerStep(Mlp mlp, IResidualProblem map, Dataset data, int[] order)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int d = data.Count;
        var output = mlp.Layers[^1];
        var p = map.GetPoint();
        // The last hidden layer's activations only (not JacobianFactors, whose δ of the first layer is d × ℓ × h).
        var hiddenOut = mlp.LayerInput(p, data.InputsTensor(), mlp.Layers.Count - 1);
        var index = tensor(order.Select(i => (long)i).ToArray(), dtype: int64);
        var phi = hiddenOut.index_select(0, index).narrow(1, 0, d).tril();
        var residual = map.Residuals().reshape(d, map.Outputs).index_select(0, index);  // H is sample-major: row i is f(xᵢ) − yᵢ
        var delta = linalg.solve_triangular(phi, residual, upper: false);  // d × ℓ
        var w = p.narrow(0, output.WeightOffset, (long)output.Out * output.In).view(output.Out, output.In);
        w.narrow(1, 0, d).sub_(delta.t());
        map.SetPoint(p);
    }
}
