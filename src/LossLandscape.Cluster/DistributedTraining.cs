using LossLandscape.Engine;
using LossLandscape.Training;

namespace LossLandscape.Cluster;

/// <summary>
/// Full-batch training with every sum over the data on the shards: <see cref="Trainer.Run(LossLandscape.Geometry.IResidualProblem, Optimizer, TrainingOptions, IProgress{TrainingProgress}, CancellationToken)"/>
/// on a <see cref="ClusterSession"/>, the single-process loop, optimizers and stopping rules unchanged.
/// </summary>
/// <remarks>
/// The session is an <see cref="LossLandscape.Geometry.IResidualProblem"/>: L, ∇L and ∇²L V are summed over the shards, H and
/// JV stacked, JᵀW summed, and K = JJᵀ assembled on the driver from the shards' per-layer factors. So gradient descent
/// (its default η = 1/λmax by Lanczos on the distributed Hessian), L-BFGS (its line search on distributed L and ∇L) and
/// Gauss–Newton (the Gram route: eig of K on the driver, each step by one distributed vector–Jacobian product) take the
/// single-process steps up to the order of the sum over samples (issue 12 §1). Each move of the point is a new version
/// sent to every shard. The mini-batch methods (sgd, adam) are single-process: their batches are drawn from the rows in
/// this process.
/// </remarks>
public static class DistributedTraining
{
    /// <summary>The optimizer's name, as <see cref="GradientDescent.Name"/>.</summary>
    public const string GradientDescentName = "gd";

    /// <summary>The optimizer's name, as <see cref="Lbfgs.Name"/>.</summary>
    public const string LbfgsName = "lbfgs";

    /// <summary>The optimizer's name, as <see cref="GaussNewton.Name"/>.</summary>
    public const string GaussNewtonName = "gauss-newton";

    /// <summary>The optimizers that run on a cluster: those that <see cref="Optimizer.TakesAnyProblem"/>.</summary>
    public static IReadOnlyList<string> OptimizerNames { get; } = [GradientDescentName, LbfgsName, GaussNewtonName];

    /// <summary>
    /// Trains on the session with <paramref name="optimizer"/> (one that <see cref="Optimizer.TakesAnyProblem"/>); the session
    /// ends at the best point. The result's settings say that the sums ran on the cluster.
    /// </summary>
    /// <param name="session">An open session (its point is p₀).</param>
    /// <param name="optimizer">A fresh gd, lbfgs or gauss-newton optimizer.</param>
    /// <param name="options">Steps and target loss (default: <see cref="Trainer.RoundingFloor(LossLandscape.Geometry.IResidualProblem)"/>).</param>
    /// <param name="progress">Receives L after every step.</param>
    /// <param name="cancellation">As for the single-process trainer.</param>
    /// <exception cref="LandscapeInputException">The optimizer draws mini-batches (sgd, adam).</exception>
    public static TrainingResult Train(ClusterSession session, Optimizer optimizer, TrainingOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(optimizer);
        var result = Trainer.Run(session, optimizer, options, progress, cancellation);
        return result with { Settings = $"{result.Settings} (on the cluster: sums over the data on {session.Config.Shards} shards)" };
    }

    /// <summary>Gradient descent p ← p − η∇L (<see cref="LossLandscape.Training.GradientDescent"/>) on the session.</summary>
    /// <param name="session">An open session (its point is p₀).</param>
    /// <param name="options">Steps and target loss.</param>
    /// <param name="learningRate">η, or null for 1/λmax at p₀ (Lanczos on the distributed Hessian).</param>
    /// <param name="progress">Receives L after every step.</param>
    /// <param name="cancellation">Checked between steps.</param>
    public static TrainingResult GradientDescent(ClusterSession session, TrainingOptions options, double? learningRate = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var optimizer = new GradientDescent(new GradientDescentOptions(learningRate));
        return Train(session, optimizer, options, progress, cancellation);
    }

    /// <summary>L-BFGS (<see cref="LossLandscape.Training.Lbfgs"/>) on the session: its two-loop recursion on the driver, its line search on distributed L and ∇L.</summary>
    /// <param name="session">An open session (its point is p₀).</param>
    /// <param name="options">Steps and target loss.</param>
    /// <param name="lbfgs">History and line search, or null for the defaults.</param>
    /// <param name="progress">Receives L after every step.</param>
    /// <param name="cancellation">Checked between steps.</param>
    public static TrainingResult Lbfgs(ClusterSession session, TrainingOptions options, LbfgsOptions? lbfgs = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var optimizer = new Lbfgs(lbfgs);
        return Train(session, optimizer, options, progress, cancellation);
    }

    /// <summary>
    /// Levenberg–Marquardt steps (<see cref="GaussNewton"/>) on the session: K = JJᵀ from the shards' factors, eig of K on
    /// the driver, each trial step −JᵀW g by one distributed vector–Jacobian product.
    /// </summary>
    /// <param name="session">An open session over an MLP (its point is p₀).</param>
    /// <param name="options">Steps and target loss.</param>
    /// <param name="initialDamping">μ₀/σmax² (<see cref="GaussNewtonTrainingOptions.InitialDamping"/>).</param>
    /// <param name="maxDampingIncreases">Damped trials per step before it stalls (<see cref="GaussNewtonTrainingOptions.MaxDampingIncreases"/>).</param>
    /// <param name="budgetBytes">The memory budget the ℓd × ℓd matrices must fit.</param>
    /// <param name="progress">Receives L after every step.</param>
    /// <param name="cancellation">Checked between steps.</param>
    /// <exception cref="MemoryBudgetExceededException">The ℓd × ℓd matrices exceed the budget.</exception>
    public static TrainingResult GaussNewtonSteps(ClusterSession session, TrainingOptions options, double initialDamping = GaussNewtonDefaultDamping,
        int maxDampingIncreases = GaussNewtonDefaultDampingIncreases, long budgetBytes = MemoryBudget.DefaultBytes,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        using var optimizer = new GaussNewton(new GaussNewtonTrainingOptions(initialDamping, maxDampingIncreases, budgetBytes));
        return Train(session, optimizer, options, progress, cancellation);
    }

    /// <summary>μ₀/σmax² by default: <see cref="GaussNewtonTrainingOptions.InitialDamping"/>'s 1e-3.</summary>
    public const double GaussNewtonDefaultDamping = 1e-3;

    /// <summary>Damped trials per step by default: <see cref="GaussNewtonTrainingOptions.MaxDampingIncreases"/>'s 40.</summary>
    public const int GaussNewtonDefaultDampingIncreases = 40;
}
