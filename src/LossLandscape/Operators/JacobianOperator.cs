using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// The Jacobian J = ∂H/∂p: ℝⁿ → ℝ^{ℓd} of an <see cref="IResidualProblem"/> at its current point, matrix-free
/// (<see cref="IResidualProblem.JacobianTimes"/>: Jv = ∂⟨Jᵀu, v⟩/∂u by the double-vjp trick, two reverse passes per batch, exact).
/// Row i·ℓ + j of the output is the entry of sample i, output j, as in <see cref="IResidualProblem.Jacobian"/>.
/// </summary>
/// <remarks>Its adjoint is <see cref="JacobianTransposeOperator"/>. Summed over the problem's rows; independent of the batch size.</remarks>
public sealed class JacobianOperator : ProblemOperator
{
    /// <summary>J of <paramref name="problem"/> at its current point.</summary>
    public JacobianOperator(IResidualProblem problem)
        : base(problem, p => p.Constraints, p => p.ParameterCount, isSymmetric: false)
    {
    }

    /// <summary>Jᵀ.</summary>
    public override LinearOperator Adjoint() => new JacobianTransposeOperator(Problem);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Problem.JacobianTimes(block);
}

/// <summary>
/// Jᵀ: ℝ^{ℓd} → ℝⁿ, matrix-free by one reverse pass per batch (<see cref="IResidualProblem.JacobianTransposeTimes"/>); the adjoint of <see cref="JacobianOperator"/>.
/// </summary>
public sealed class JacobianTransposeOperator : ProblemOperator
{
    /// <summary>Jᵀ of <paramref name="problem"/> at its current point.</summary>
    public JacobianTransposeOperator(IResidualProblem problem)
        : base(problem, p => p.ParameterCount, p => p.Constraints, isSymmetric: false)
    {
    }

    /// <summary>J.</summary>
    public override LinearOperator Adjoint() => new JacobianOperator(Problem);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => Problem.JacobianTransposeTimes(block);
}
