using LossLandscape.Curvature;
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
/// <see cref="Step(LossLandscape.Geometry.IResidualProblem)"/> moves the model's leaves (through <see cref="Models.ParameterVector.Set"/>) to the next iterate.
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

    /// <summary>Takes one step from the model's current point.</summary>
    public abstract StepOutcome Step(ResidualMap map);

    /// <summary>
    /// Takes one step from the problem's current point. A <see cref="ResidualMap"/> goes to <see cref="Step(ResidualMap)"/>;
    /// the full-batch methods (gd, lbfgs, gauss-newton: <see cref="TakesAnyProblem"/>) take any <see cref="IResidualProblem"/>,
    /// such as a cluster session; the mini-batch methods draw rows from the data in this process and refuse other problems.
    /// </summary>
    /// <exception cref="LandscapeInputException">This optimizer needs the data in this process and the problem is not a map.</exception>
    public virtual StepOutcome Step(IResidualProblem problem) => problem is ResidualMap map
        ? Step(map)
        : throw new LandscapeInputException($"the optimizer {Name} draws mini-batches from the data in this process: it runs on a residual map only (gd, lbfgs and gauss-newton run on any problem)");

    /// <summary>
    /// The rows B of one step's mini-batch on data of <paramref name="rows"/> rows, or null for a method whose steps use all
    /// rows. The trainer's default <see cref="TrainingOptions.LossEvery"/> is one epoch, ⌈d/B⌉ steps.
    /// </summary>
    public virtual int? RowsPerStep(int rows) => null;

    /// <summary>Whether <see cref="Step(IResidualProblem)"/> takes problems other than a <see cref="ResidualMap"/>: true for the full-batch methods.</summary>
    public virtual bool TakesAnyProblem => false;

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
    /// gradient descent on the local quadratic. λmax by Lanczos (k = 1, relative tolerance 1e−3) on <see cref="HessianOperator"/>.
    /// </summary>
    public static double InverseSharpness(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        var result = Lanczos.Eigenpairs(map.Hessian(), new LanczosOptions(K: 1, Which: SpectrumEnd.Largest, MaxIterations: 60, Tolerance: 1e-3));
        result.Eigenvectors.Dispose();
        double top = result.Eigenvalues.Count > 0 ? result.Eigenvalues[0] : 0;
        return top > 0 && double.IsFinite(top) ? 1.0 / top : 1e-3;
    }
}
