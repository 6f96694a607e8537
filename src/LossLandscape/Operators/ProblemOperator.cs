using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// An operator whose products are one of an <see cref="IResidualProblem"/>'s block products, taken at the problem's point
/// current when applied: the one shape of <see cref="HessianOperator"/>, <see cref="GaussNewtonOperator"/>,
/// <see cref="JacobianOperator"/> and <see cref="JacobianTransposeOperator"/>, which differ only in their size and product.
/// </summary>
public abstract class ProblemOperator : LinearOperator
{
    /// <summary>An operator of <paramref name="rows"/> × <paramref name="columns"/> on the problem's device, float64.</summary>
    private protected ProblemOperator(IResidualProblem problem, Func<IResidualProblem, long> rows, Func<IResidualProblem, long> columns, bool isSymmetric)
        : base(rows(problem ?? throw new ArgumentNullException(nameof(problem))), columns(problem), ScalarType.Float64, problem.Model.Leaves[0].device, isSymmetric)
        => Problem = problem;

    /// <summary>The problem whose products this operator applies.</summary>
    public IResidualProblem Problem { get; }

    /// <inheritdoc/>
    protected sealed override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);
}
