using System.Diagnostics;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="Trainer.Run"/>.</summary>
/// <param name="Steps">The most optimizer steps N.</param>
/// <param name="TargetLoss">
/// Stop (<see cref="SolverStatus.Converged"/>) once L ≤ this; default null: the float64 zero of L,
/// <see cref="Trainer.RoundingFloor"/>.
/// </param>
public sealed record TrainingOptions(int Steps, double? TargetLoss = null);

/// <summary>Progress of a run, reported after each step.</summary>
/// <param name="Step">Steps taken.</param>
/// <param name="Steps">The budget N.</param>
/// <param name="Loss">L at the current point.</param>
/// <param name="BestLoss">The least L seen so far.</param>
public sealed record TrainingProgress(int Step, int Steps, double Loss, double BestLoss);

/// <summary>The outcome of a training run.</summary>
/// <param name="Optimizer">The optimizer's name.</param>
/// <param name="Settings">The optimizer's settings in words (<see cref="Optimizer.Describe"/>).</param>
/// <param name="Status">How the run ended.</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="LossHistory">L at p₀ and after each step (Steps + 1 values).</param>
/// <param name="BestLoss">The least L in the history.</param>
/// <param name="BestStep">The step at which it was reached (0: the start).</param>
/// <param name="BestParameters">The point with the least L; the model is left there.</param>
/// <param name="TargetLoss">The target loss used.</param>
/// <param name="Evaluations">The optimizer's loss or gradient evaluations (see <see cref="Optimizer.Evaluations"/>).</param>
/// <param name="Seconds">Wall time of the run.</param>
/// <param name="Note">Why the optimizer stalled, if it did.</param>
public sealed record TrainingResult(
    string Optimizer, string Settings, SolverStatus Status, int Steps, IReadOnlyList<double> LossHistory, double BestLoss, int BestStep,
    double[] BestParameters, double TargetLoss, long Evaluations, double Seconds, string? Note)
{
    /// <summary>L at p₀.</summary>
    public double InitialLoss => LossHistory[0];

    /// <summary>L after the last step (may exceed <see cref="BestLoss"/> for the non-monotone methods).</summary>
    public double FinalLoss => LossHistory[^1];
}

/// <summary>
/// Runs an <see cref="Optimizer"/> for at most N steps on a <see cref="ResidualMap"/>, recording L after every step,
/// reporting progress, honouring cancellation, and always keeping the best point: whatever ends the run (the target,
/// the budget, a stall, divergence or cancellation), the model is left at the point of least L seen.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// The float64 zero of L: ℓd·(10·ε·max(1, max|y|))^a, i.e. every residual within ten units of rounding of the
    /// targets' scale; below it, the printed L is rounding noise (ε = 2⁻⁵², <see cref="Float64.Epsilon"/>).
    /// </summary>
    public static double RoundingFloor(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return map.Constraints * Math.Pow(10 * Float64.Epsilon * Math.Max(1.0, map.Data.MaxAbsTarget()), map.Exponent);
    }

    /// <summary>Trains <paramref name="map"/>'s model with <paramref name="optimizer"/>.</summary>
    /// <param name="map">The model and data; the model's current leaves are p₀.</param>
    /// <param name="optimizer">A fresh optimizer (its state belongs to this run).</param>
    /// <param name="options">The budget and target.</param>
    /// <param name="progress">Receives (step, N, L, best L) after each step.</param>
    /// <param name="cancellation">Checked before each step; cancelling ends the run with <see cref="SolverStatus.Cancelled"/>, not an exception.</param>
    public static TrainingResult Run(ResidualMap map, Optimizer optimizer, TrainingOptions options, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Steps < 0)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the number of steps must be ≥ 0, got {options.Steps}"), nameof(options));
        }
        NonFinite.RequireFinitePoint(map);
        var watch = Stopwatch.StartNew();
        double target = options.TargetLoss ?? RoundingFloor(map);
        double loss = map.Loss();
        var history = new List<double> { loss };
        double bestLoss = double.IsFinite(loss) ? loss : double.PositiveInfinity;
        int bestStep = 0;
        var best = ParameterVector.Get(map.Model).DetachFromDisposeScope();
        var status = SolverStatus.StoppedWithoutConvergence;
        string? note = null;
        int step = 0;
        try
        {
            while (true)
            {
                // L ≤ max(0, target): the convergence test with an absolute tolerance only; a NaN L never passes it.
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
                StepOutcome outcome;
                using (var scope = NewDisposeScope())
                {
                    outcome = optimizer.Step(map);
                }
                step++;
                loss = map.Loss();
                history.Add(loss);
                if (loss < bestLoss)
                {
                    bestLoss = loss;
                    bestStep = step;
                    best.Dispose();
                    best = ParameterVector.Get(map.Model).DetachFromDisposeScope();
                }
                progress?.Report(new TrainingProgress(step, options.Steps, loss, bestLoss));
                if (!double.IsFinite(loss))
                {
                    status = SolverStatus.Diverged;
                    note = "L is not finite: the step size is too large";
                    break;
                }
                if (outcome.Stalled)
                {
                    status = ConvergenceTest.IsMet(loss, scale: 0, relativeTolerance: 0, absoluteTolerance: target) ? SolverStatus.Converged : SolverStatus.Stalled;
                    note = outcome.Note;
                    break;
                }
            }
            ParameterVector.Set(map.Model, best);
            return new TrainingResult(optimizer.Name, optimizer.Describe(), status, step, history, bestLoss, bestStep,
                best.data<double>().ToArray(), target, optimizer.Evaluations, watch.Elapsed.TotalSeconds, note);
        }
        finally
        {
            best.Dispose();
        }
    }
}
