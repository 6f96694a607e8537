using System.Diagnostics;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Cluster;

/// <summary>
/// Full-batch gradient descent with L and ∇L summed on the shards: the loop of <see cref="Trainer.Run"/> (target L, best
/// point, stall at ∇L = 0, divergence) and the step of <see cref="GradientDescent"/>, p ← p − η∇L, on a <see cref="ClusterSession"/>.
/// </summary>
/// <remarks>
/// The same arithmetic as the single-process optimizer, so the same steps give the same losses up to the order of the
/// sum over samples (issue 12 §1). The default step η = 1/λmax at p₀ comes from Lanczos on the distributed Hessian with the
/// options of <see cref="Optimizer.InverseSharpness"/>. Each step moves every shard to the new point (a new version).
/// L-BFGS and Gauss–Newton are not distributed here: their line search and Levenberg–Marquardt trials run on a
/// <c>ResidualMap</c>.
/// </remarks>
public static class DistributedTraining
{
    /// <summary>The optimizer's name, as <see cref="GradientDescent.Name"/>.</summary>
    public const string GradientDescentName = "gd";

    /// <summary>Runs at most <see cref="TrainingOptions.Steps"/> steps of gradient descent; the session ends at the best point.</summary>
    /// <param name="session">An open session (its point is p₀).</param>
    /// <param name="options">Steps and target loss (default: the rounding floor of <see cref="Trainer.RoundingFloor"/>).</param>
    /// <param name="learningRate">η, or null for 1/λmax at p₀.</param>
    /// <param name="progress">Receives L after every step.</param>
    /// <param name="cancellation">Checked between steps.</param>
    public static TrainingResult GradientDescent(ClusterSession session, TrainingOptions options, double? learningRate = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Steps < 0)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the number of steps must be ≥ 0, got {options.Steps}"), nameof(options));
        }
        if (learningRate is { } r && !(r > 0 && double.IsFinite(r)))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the learning rate must be a positive number, got {r}"), nameof(learningRate));
        }
        var watch = Stopwatch.StartNew();
        // Trainer.RoundingFloor: ℓd·(10ε·max(1, max|y|))^a, the loss of residuals at rounding level.
        double target = options.TargetLoss ?? session.Constraints * Math.Pow(10 * Float64.Epsilon * Math.Max(1.0, session.Data.MaxAbsTarget()), session.Exponent);
        double loss = session.Loss();
        var history = new List<double> { loss };
        double bestLoss = double.IsFinite(loss) ? loss : double.PositiveInfinity;
        int bestStep = 0, step = 0;
        var best = session.Point.ToArray();
        var status = SolverStatus.StoppedWithoutConvergence;
        string? note = null;
        long evaluations = 0;
        double? rate = learningRate;
        while (true)
        {
            if (ConvergenceTest.IsMet(loss, scale: 0, relativeTolerance: 0, absoluteTolerance: target))
            {
                status = SolverStatus.Converged;
                break;
            }
            if (cancellation.IsCancellationRequested)
            {
                status = SolverStatus.Cancelled;
                break;
            }
            if (step >= options.Steps)
            {
                break;
            }
            bool stalled;
            using (var scope = NewDisposeScope())
            {
                rate ??= InverseSharpness(session);
                var g = session.Gradient();
                evaluations++;
                stalled = g.abs().max().item<double>() == 0;
                if (!stalled)
                {
                    // GradientDescent.Step: p − η∇L, in the same order of operations.
                    session.SetPoint(tensor(session.Point.ToArray(), dtype: ScalarType.Float64).sub_(g.mul_(rate.Value)));
                }
            }
            step++;
            loss = session.Loss();
            history.Add(loss);
            if (loss < bestLoss)
            {
                bestLoss = loss;
                bestStep = step;
                best = session.Point.ToArray();
            }
            progress?.Report(new TrainingProgress(step, options.Steps, loss, bestLoss));
            if (!double.IsFinite(loss))
            {
                status = SolverStatus.Diverged;
                note = "L is not finite: the step size is too large";
                break;
            }
            if (stalled)
            {
                status = ConvergenceTest.IsMet(loss, scale: 0, relativeTolerance: 0, absoluteTolerance: target) ? SolverStatus.Converged : SolverStatus.Stalled;
                note = "∇L = 0";
                break;
            }
        }
        if (!session.Point.SequenceEqual(best))
        {
            using var scope = NewDisposeScope();
            session.SetPoint(tensor(best, dtype: ScalarType.Float64));
        }
        string describe = $"gradient descent, η = {rate:G4}{(learningRate is null ? " (1/λmax at p₀)" : "")} (on the cluster)";
        return new TrainingResult(GradientDescentName, describe, status, step, history, bestLoss, bestStep, best, target, evaluations, watch.Elapsed.TotalSeconds, note);
    }

    /// <summary>1/λmax(∇²L) by Lanczos on the distributed Hessian, with <see cref="Optimizer.InverseSharpness"/>'s options and fallback.</summary>
    private static double InverseSharpness(ClusterSession session)
    {
        using var scope = NewDisposeScope();
        var result = Lanczos.Eigenpairs(new DistributedHessianOperator(session), new LanczosOptions(K: 1, Which: SpectrumEnd.Largest, MaxIterations: 60, Tolerance: 1e-3));
        result.Eigenvectors.Dispose();
        double top = result.Eigenvalues.Count > 0 ? result.Eigenvalues[0] : 0;
        // Optimizer.InverseSharpness's fallback η = 1e-3 when λmax is not positive.
        return top > 0 && double.IsFinite(top) ? 1.0 / top : 1e-3;
    }
}
