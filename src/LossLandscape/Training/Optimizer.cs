using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Training;

/// <summary>What one optimizer step did.</summary>
/// <param name="Stalled">True when the optimizer can make no more progress from here (no descent, failed line search, zero gradient).</param>
/// <param name="Note">Why it stalled, or null.</param>
/// <param name="BatchLoss">
/// A mini-batch method's estimate (d/|B|)·Σ_{i∈B}|H_i|^a of L at the point the step started from (the loss of the
/// mini-batch it drew, on L's scale); null for the full-batch methods.
/// </param>
public sealed record StepOutcome(bool Stalled, string? Note = null, double? BatchLoss = null)
{
    /// <summary>An ordinary step.</summary>
    public static StepOutcome Moved { get; } = new(false);
}

/// <summary>
/// An optimizer over the flat parameter vector p ∈ ℝⁿ of a <see cref="ResidualMap"/>'s model: each
/// <see cref="Step(LossLandscape.Problem.IResidualProblem, RunLimits?)"/> moves the model's leaves (through <see cref="Models.ParameterVector.Set"/>) to the next iterate.
/// </summary>
/// <remarks>
/// Optimizers keep state between steps (momentum, moment estimates, curvature pairs) and assume that only they move
/// the point; use one instance per run. <see cref="Trainer"/> runs them, tracks the loss and keeps the best point.
/// </remarks>
public abstract class Optimizer : IDisposable
{
    /// <summary>The optimizer's name as the command line spells it (gd, sgd, adam, lbfgs, gauss-newton).</summary>
    public abstract string Name { get; }

    /// <summary>Loss or gradient evaluations so far (a mini-batch gradient counts as one).</summary>
    public long Evaluations { get; protected set; }

    /// <summary>A one-line description of the settings in use (after any automatic choice, such as the learning rate).</summary>
    public abstract string Describe();

    /// <summary>
    /// Takes one step from the problem's current point: a full-batch method (gd, lbfgs, gauss-newton) from L, ∇L or J over
    /// all rows, a mini-batch method (sgd, adam) from the rows of its seeded draw (<see cref="IResidualProblem.RowsLossAndGradient"/>),
    /// on any problem: the same draws, and the same steps up to summation order, in one process or on a cluster.
    /// </summary>
    /// <param name="problem">The problem, at the current iterate (moved to the next).</param>
    /// <param name="limits">
    /// The memory budget of what the step holds (Gauss–Newton's factorization of J, the Lanczos basis of a default learning
    /// rate); <see cref="Trainer"/> passes its own budget, without the token: a step is never stopped half-way, it is abandoned.
    /// </param>
    public abstract StepOutcome Step(IResidualProblem problem, RunLimits? limits = null);

    /// <summary>
    /// The rows B of one step's mini-batch on data of <paramref name="rows"/> rows, or null for a method whose steps use all
    /// rows. The trainer's default <see cref="TrainingOptions.LossEvery"/> is one epoch, ⌈d/B⌉ steps.
    /// </summary>
    public virtual int? RowsPerStep(int rows) => null;

    /// <summary>Releases the optimizer's state tensors.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the state tensors; override to dispose what a subclass holds.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <summary>
    /// The default learning rate of the first-order methods, 1/λmax(∇²L(p₀)): the step 1/L for an L-smooth function
    /// (Nesterov, Introductory Lectures on Convex Optimization, 2004, §2.1.5), half the stability limit 2/λmax of
    /// gradient descent on the local quadratic. λmax by Lanczos (k = 1, relative tolerance 1e−3) on <see cref="HessianOperator"/>,
    /// its basis within the budget of <paramref name="limits"/>.
    /// </summary>
    public static double InverseSharpness(IResidualProblem map, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        var result = Lanczos.Eigenpairs(new HessianOperator(map), new LanczosOptions(K: 1, Which: SpectrumEnd.Largest, MaxIterations: 60, Tolerance: 1e-3), limits);
        result.Eigenvectors.Dispose();
        double top = result.Eigenvalues.Count > 0 ? result.Eigenvalues[0] : 0;
        return top > 0 && double.IsFinite(top) ? 1.0 / top : 1e-3;
    }
}
