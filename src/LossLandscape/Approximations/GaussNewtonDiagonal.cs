using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Operators;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// The exact diagonal of the Gauss–Newton matrix, diag G = Σᵢ꜀ gᵢ꜀ ⊙ gᵢ꜀ with gᵢ꜀ = Jᵢᵀsᵢ꜀ the square-root rows (sᵢ꜀ the
/// columns of Sᵢ, SᵢSᵢᵀ = ∂²ℓᵢ/∂f², <see cref="LossFunction.CurvatureSquareRoot"/>): deterministic, from each batch's per-sample
/// Jacobian rows, for any model (the batched Jacobian of the project's networks, autograd for the others).
/// </summary>
/// <remarks>
/// BackPACK's <c>DiagGGNExact</c> computes the same quantity by back-propagating the square-root factors (Dangel, Kunstner &amp;
/// Hennig 2020, "BackPACK: packing more into backprop", §2.3 and Table 1); here it is read from the rows Sᵢᵀ Jᵢ of a batch.
/// </remarks>
public static class GaussNewtonDiagonal
{
    /// <summary>diag G of <paramref name="problem"/> at its current point, as a <see cref="DiagonalOperator"/>.</summary>
    /// <param name="problem">Any problem.</param>
    /// <param name="limits">The budget of a batch's rows (2·ℓ·n numbers per row, a quarter of the budget); the token, checked before each batch.</param>
    public static DiagonalOperator Compute(IResidualProblem problem, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        limits ??= RunLimits.Default;
        long perRow = checked(sizeof(double) * 2L * problem.Outputs * problem.ParameterCount);
        limits.Require($"one row's Jacobian and square-root rows (2·ℓ·n = {2L * problem.Outputs * problem.ParameterCount} numbers, a {ResidualMap.BudgetShare}th of the budget)",
            checked(perRow * ResidualMap.BudgetShare), "use a smaller network", BudgetRemedy.Widths);
        int batchSize = (int)Math.Clamp(limits.MemoryBudgetBytes / ResidualMap.BudgetShare / perRow, 1, Math.Max(1, problem.Rows));
        using var scope = NewDisposeScope();
        var model = problem.Model;
        var diagonal = zeros(problem.ParameterCount, dtype: ScalarType.Float64);
        var rowShape = model.InputShape.ToArray();
        for (long start = 0; start < problem.Rows; start += batchSize)
        {
            limits.ThrowIfCancellationRequested();
            using var batchScope = NewDisposeScope();
            long count = Math.Min(batchSize, problem.Rows - start);
            var (x, y) = problem.Data.Read(start, count);
            var inputs = x.reshape([count, .. rowShape]);
            Tensor outputs, jacobian;
            if (model is NetworkModel network)
            {
                using var noGrad = no_grad();
                outputs = network.Network.Forward(network.Parameters.detach(), inputs);
                jacobian = network.Network.Jacobian(network.Parameters, inputs);
            }
            else
            {
                outputs = model.Forward(inputs).detach();
                jacobian = AutogradJacobian.Compute(model, inputs);
            }
            var st = problem.LossFunction.CurvatureSquareRoot(outputs, y, problem.Rows).transpose(1, 2); // b × c × ℓ
            var rows = st.matmul(jacobian.view(count, problem.Outputs, problem.ParameterCount)); // b × c × n
            diagonal.PlusInPlace(rows.mul(rows).sum(new long[] { 0, 1 }));
            limits.Checkpoint($"rows {start + count}/{problem.Rows}", (double)(start + count) / problem.Rows);
        }
        var result = new DiagonalOperator(diagonal.to(model.Leaves[0].device));
        return result;
    }
}
