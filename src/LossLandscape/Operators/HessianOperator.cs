using LossLandscape.Problem;
using static TorchSharp.torch;
using LossLandscape.Engine;

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
public sealed class HessianOperator : LinearOperator
{
    /// <summary>The Hessian of <paramref name="problem"/>'s loss at its current point (read at each application).</summary>
    public HessianOperator(IResidualProblem problem)
        : base((problem ?? throw new ArgumentNullException(nameof(problem))).ParameterCount, problem.ParameterCount, ScalarType.Float64, problem.Model.Leaves[0].device, isSymmetric: true)
        => Problem = problem;

    /// <summary>The problem whose loss is differentiated.</summary>
    public IResidualProblem Problem { get; }

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Problem.HessianTimes(block);
}
