using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// The Hessian ∇²L(p) ∈ ℝⁿˣⁿ of the loss L = Σ_k |H_k|^a of an <see cref="IResidualProblem"/> at its
/// current point, applied matrix-free: ∇²L v = ∇_p ⟨∇_p L, v⟩ (Pearlmutter 1994, "Fast exact
/// multiplication by the Hessian", by double backward), summed over its rows batch by batch (<see cref="IResidualProblem.HessianTimes"/>).
/// </summary>
/// <remarks>
/// L is a sum over rows, so ∇²L v = Σ_batches ∇²L_b v: the result does not depend on the batch size beyond
/// floating-point summation order. For a = 2, ∇²L = 2JᵀJ + 2Σ_k H_k∇²H_k (<see cref="GaussNewtonOperator"/>
/// plus <see cref="ResidualTermOperator"/>). A block of k vectors costs one forward and one backward pass per
/// batch plus k double-backward passes. Works for any <see cref="Models.IDifferentiableModel"/>.
/// </remarks>
public sealed class HessianOperator : ProblemOperator
{
    /// <summary>The Hessian of <paramref name="problem"/>'s loss at its current point (read at each application).</summary>
    public HessianOperator(IResidualProblem problem)
        : base(problem, p => p.ParameterCount, p => p.ParameterCount, isSymmetric: true)
    {
    }

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Problem.HessianTimes(block);
}
