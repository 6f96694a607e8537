using System.Text.Json.Serialization;
using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="Trainer.Run"/>.</summary>
/// <param name="MaxIterations">The most optimizer steps N.</param>
/// <param name="TargetLoss">
/// Stop (<see cref="SolverStatus.Converged"/>) once L ≤ this; default null: the float64 zero of L,
/// <see cref="Trainer.RoundingFloor(LossLandscape.Problem.IResidualProblem)"/>. The target is tested wherever L is evaluated.
/// </param>
/// <param name="LossEvery">
/// Evaluate L over all rows every K steps (and after the last step); default null: <see cref="Trainer.DefaultLossEvery"/>,
/// every step for the full-batch methods and once an epoch (⌈d/B⌉ steps) for the mini-batch ones. Between evaluations a
/// mini-batch method's progress carries the running mean of its mini-batch losses.
/// </param>
public sealed record TrainingOptions(int MaxIterations, double? TargetLoss = null, int? LossEvery = null);

/// <summary>
/// Progress of a run, reported after each step to the <see cref="RunLimits.Progress"/> of <see cref="Trainer.Run"/>: a
/// <see cref="ProgressReport"/> whose stage says the step and the losses in words and whose fraction is Step/N.
/// </summary>
/// <param name="Step">Steps taken.</param>
/// <param name="MaxIterations">The budget N.</param>
/// <param name="Loss">L over all rows at the last evaluated point (after step <paramref name="LossStep"/>).</param>
/// <param name="BestLoss">The least L evaluated so far.</param>
/// <param name="LossStep">The step after which <paramref name="Loss"/> was evaluated (equal to <paramref name="Step"/> where L is evaluated every step).</param>
/// <param name="BatchLoss">
/// A mini-batch method's running loss: the mean of its mini-batch estimates of L over the steps since the last
/// evaluation of L (<see cref="StepOutcome.BatchLoss"/>); null for the full-batch methods and right after an evaluation.
/// </param>
public sealed record TrainingProgress(int Step, int MaxIterations, double Loss, double BestLoss, int LossStep = 0, double? BatchLoss = null)
    : ProgressReport(Describe(Step, MaxIterations, Loss, BestLoss, LossStep, BatchLoss), (double)Step / Math.Max(1, MaxIterations))
{
    private static string Describe(int step, int maxIterations, double loss, double bestLoss, int lossStep, double? batchLoss)
    {
        static string G(double v) => v.ToString("G4", System.Globalization.CultureInfo.InvariantCulture);
        string at = lossStep == step ? "" : $" at step {lossStep}";
        string batch = batchLoss is { } b ? $", mini-batch L ≈ {G(b)}" : "";
        return $"step {step}/{maxIterations}, L = {G(loss)}{at} (best {G(bestLoss)}){batch}";
    }
}

/// <summary>The outcome of a training run.</summary>
/// <param name="Optimizer">The optimizer's name.</param>
/// <param name="Settings">The optimizer's settings in words (<see cref="Optimizer.Describe"/>).</param>
/// <param name="Status">How the run ended.</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="LossHistory">
/// L at p₀ and after every evaluated step (<paramref name="LossSteps"/>): after each step (Steps + 1 values) where L is
/// evaluated every step.
/// </param>
/// <param name="BestLoss">The least L in the history.</param>
/// <param name="BestStep">The step at which it was reached (0: the start).</param>
/// <param name="BestParameters">The point with the least L; the model is left there (not in JSON: the model file holds it).</param>
/// <param name="TargetLoss">The target loss used.</param>
/// <param name="Evaluations">The optimizer's loss or gradient evaluations (see <see cref="Optimizer.Evaluations"/>).</param>
/// <param name="Seconds">Wall time of the run.</param>
/// <param name="Note">Why the optimizer stalled, if it did.</param>
/// <param name="LossSteps">The step after which each entry of <paramref name="LossHistory"/> was evaluated (0: p₀).</param>
/// <param name="LossEvery">K: L was evaluated every K steps, and after the last.</param>
public sealed record TrainingResult(
    string Optimizer, string Settings, SolverStatus Status, int Steps, IReadOnlyList<double> LossHistory, double BestLoss, int BestStep,
    [property: JsonIgnore] double[] BestParameters, double TargetLoss, long Evaluations, double Seconds, string? Note, IReadOnlyList<int> LossSteps, int LossEvery)
{
    /// <summary>L at p₀.</summary>
    public double InitialLoss => LossHistory[0];

    /// <summary>L after the last step (may exceed <see cref="BestLoss"/> for the non-monotone methods); the run evaluates L after its last step whatever K.</summary>
    public double FinalLoss => LossHistory[^1];
}

/// <summary>
/// Runs an <see cref="Optimizer"/> for at most N steps on a <see cref="ResidualMap"/>, recording L every K steps
/// (<see cref="TrainingOptions.LossEvery"/>), reporting progress, honouring cancellation, and always keeping the best
/// point: whatever ends the run (the target, the budget, a stall, divergence or cancellation), the model is left at the
/// point of least L evaluated.
/// </summary>
public static class Trainer
{
    /// <summary>
    /// The float64 zero of L: ℓd·(10·ε·max(1, max|y|))^a, i.e. every residual within ten units of rounding of the
    /// targets' scale; below it, the printed L is rounding noise (ε = 2⁻⁵², <see cref="Float64.Epsilon"/>). The mean squared
    /// error's is that of a = 2 divided by ℓd; cross-entropy has none (0: its infimum is not attained).
    /// </summary>
    public static double RoundingFloor(IResidualProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        double scale = 10 * Float64.Epsilon * Math.Max(1.0, problem.MaxAbsTarget);
        return problem.LossFunction.Kind switch
        {
            LossKind.Squared => problem.Constraints * Math.Pow(scale, problem.Exponent),
            LossKind.Mse => scale * scale,
            _ => 0.0,
        };
    }

    /// <summary>
    /// The default K of <see cref="TrainingOptions.LossEvery"/>: 1 for a method whose steps use all rows (its step costs
    /// at least one evaluation of L, so one more per step at most doubles it), and one epoch, ⌈d/B⌉ steps, for a
    /// mini-batch method (<see cref="Optimizer.RowsPerStep"/>): an evaluation costs about d/B mini-batch forward passes,
    /// so evaluating after every step multiplied a step's cost by about d/B (300 Adam steps of B = 32 on 60,000 rows took
    /// 134 s, issue 19 §8), while once an epoch adds about a third of a forward-and-backward pass per row. An epoch is also
    /// where PyTorch users log the loss.
    /// </summary>
    public static int DefaultLossEvery(IResidualProblem problem, Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(problem);
        ArgumentNullException.ThrowIfNull(optimizer);
        int rows = problem.Rows;
        return rows > 0 && optimizer.RowsPerStep(rows) is { } batch ? (int)((rows + (long)batch - 1) / batch) : 1;
    }

    /// <summary>
    /// Trains any <see cref="IResidualProblem"/> (a <see cref="ResidualMap"/>, or a cluster session whose sums over the data
    /// run on its workers) with <paramref name="optimizer"/>, every optimizer on either.
    /// </summary>
    /// <param name="problem">The problem; its current point is p₀, and it is left at the best point.</param>
    /// <param name="optimizer">A fresh optimizer (its state belongs to this run).</param>
    /// <param name="options">The budget and target.</param>
    /// <param name="limits">
    /// The memory budget of the optimizer's steps (<see cref="Optimizer.Step"/>); a <see cref="TrainingProgress"/> (step, N, L,
    /// best L) reported after each step; the token: cancelling ends the run with <see cref="SolverStatus.Cancelled"/>, not
    /// an exception, at once, even in the middle of a step (see the remarks).
    /// </param>
    /// <remarks>
    /// With a token that can be cancelled, each step runs on a worker thread while this thread waits for the step or
    /// the token, whichever comes first: one step may be a single long LAPACK call (the SVD or eigendecomposition of a
    /// Gauss–Newton step, seconds to minutes on digits), which nothing can interrupt. A step cut short this way is
    /// abandoned: it finishes in the background, its point is never used, and the result's
    /// <see cref="TrainingResult.BestParameters"/> is the best point among the finished steps. Only then is the
    /// problem's point undefined (the abandoned step may still move it): read the best point from the result, and dispose
    /// the problem only when the process no longer needs it. Without a cancellable token the steps run on the
    /// calling thread and the problem is left at the best point.
    /// </remarks>
    /// <exception cref="LandscapeInputException">H is not finite at p₀, or K &lt; 1.</exception>
    public static TrainingResult Run(IResidualProblem problem, Optimizer optimizer, TrainingOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        if (options.MaxIterations < 0)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the number of steps must be ≥ 0, got {options.MaxIterations}"), nameof(options));
        }
        if (options.LossEvery is < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"L must be evaluated every K ≥ 1 steps, got K = {options.LossEvery}"), nameof(options));
        }
        FiniteLoss.RequirePoint(problem);
        var map = problem;
        var watch = Stopwatch.StartNew();
        double target = options.TargetLoss ?? RoundingFloor(map);
        int every = options.LossEvery ?? DefaultLossEvery(map, optimizer);
        double loss = map.Loss();
        var history = new List<double> { loss };
        var lossSteps = new List<int> { 0 };
        double batchSum = 0; // the mini-batch losses since the last evaluation of L, and how many
        int batchCount = 0;
        double bestLoss = double.IsFinite(loss) ? loss : double.PositiveInfinity;
        int bestStep = 0;
        var best = map.GetPoint().DetachFromDisposeScope();
        var status = SolverStatus.StoppedWithoutConvergence;
        string? note = null;
        int step = 0;
        bool abandoned = false;
        StepWorker? worker = null;
        try
        {
            while (true)
            {
                // L ≤ max(0, target) at the current point: the convergence test with an absolute tolerance only; a NaN L never passes it.
                if (lossSteps[^1] == step && ConvergenceTest.IsMet(loss, scale: 0, relativeTolerance: 0, absoluteTolerance: target))
                {
                    status = SolverStatus.Converged;
                    break;
                }
                if (limits.IsCancellationRequested)
                {
                    status = SolverStatus.Cancelled;
                    break;
                }
                if (step >= options.MaxIterations)
                {
                    break;
                }
                if (TakeStep(map, optimizer, limits, ref worker) is not { } outcome)
                {
                    // Cancelled in the middle of a step: the step goes on in the background and its point is not used.
                    status = SolverStatus.Cancelled;
                    abandoned = true;
                    break;
                }
                step++;
                if (outcome.BatchLoss is { } batchLoss)
                {
                    batchSum += batchLoss;
                    batchCount++;
                }
                // L over all rows every K steps, after the last step, and wherever the run may end or a mini-batch overflowed.
                bool evaluate = step % every == 0 || step >= options.MaxIterations || outcome.Stalled || limits.IsCancellationRequested
                    || outcome.BatchLoss is { } b && !double.IsFinite(b);
                if (!evaluate)
                {
                    limits.Progress?.Report(new TrainingProgress(step, options.MaxIterations, loss, bestLoss, lossSteps[^1], batchCount > 0 ? batchSum / batchCount : null));
                    continue;
                }
                loss = map.Loss();
                history.Add(loss);
                lossSteps.Add(step);
                (batchSum, batchCount) = (0, 0);
                if (loss < bestLoss)
                {
                    bestLoss = loss;
                    bestStep = step;
                    best.Dispose();
                    best = map.GetPoint().DetachFromDisposeScope();
                }
                limits.Progress?.Report(new TrainingProgress(step, options.MaxIterations, loss, bestLoss, step));
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
            if (!abandoned)
            {
                map.SetPoint(best);
            }
            return new TrainingResult(optimizer.Name, optimizer.Describe(), status, step, history, bestLoss, bestStep,
                best.data<double>().ToArray(), target, optimizer.Evaluations, watch.Elapsed.TotalSeconds, note, lossSteps, every);
        }
        finally
        {
            best.Dispose();
            worker?.Dispose();
        }
    }

    /// <summary>
    /// One step of <paramref name="optimizer"/> within the budget of <paramref name="limits"/>; null when its token was
    /// cancelled before the step finished (the step is then abandoned to finish in the background on <paramref name="worker"/>).
    /// </summary>
    private static StepOutcome? TakeStep(IResidualProblem map, Optimizer optimizer, RunLimits limits, ref StepWorker? worker)
    {
        var budget = new RunLimits(limits.MemoryBudgetBytes); // a step is abandoned, never stopped half-way: no token
        if (!limits.Cancellation.CanBeCanceled)
        {
            using var scope = NewDisposeScope();
            return optimizer.Step(map, budget);
        }
        worker ??= new StepWorker();
        return worker.Run(() => optimizer.Step(map, budget), limits.Cancellation);
    }

    /// <summary>
    /// One background thread that takes the steps of one run, so that the caller can stop waiting for a step. One thread
    /// for the whole run, not one per step: libtorch sets up its per-thread state (the OpenMP team) on a thread's first
    /// operation, and a new thread per step made sgd on iris 28 ms a step instead of under one.
    /// </summary>
    private sealed class StepWorker : IDisposable
    {
        private readonly System.Collections.Concurrent.BlockingCollection<(Func<StepOutcome> Step, TaskCompletionSource<StepOutcome> Done)> _queue = new();

        public StepWorker()
        {
            // Background: an abandoned step must not keep the process alive.
            new Thread(Loop) { IsBackground = true, Name = "LossLandscape training step" }.Start();
        }

        /// <summary>Runs <paramref name="step"/> on the worker; null if <paramref name="cancellation"/> fires first.</summary>
        public StepOutcome? Run(Func<StepOutcome> step, CancellationToken cancellation)
        {
            var done = new TaskCompletionSource<StepOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
            _queue.Add((step, done), CancellationToken.None);
            WaitHandle.WaitAny([((IAsyncResult)done.Task).AsyncWaitHandle, cancellation.WaitHandle]);
            return done.Task.IsCompleted ? done.Task.GetAwaiter().GetResult() : null;
        }

        /// <summary>Lets the thread end after the step in progress, if any.</summary>
        public void Dispose() => _queue.CompleteAdding();

        private void Loop()
        {
            foreach (var (step, done) in _queue.GetConsumingEnumerable())
            {
                try
                {
                    // TorchSharp's dispose scopes are per thread: the step's temporaries are freed here.
                    using var scope = NewDisposeScope();
                    done.SetResult(step());
                }
                catch (Exception e)
                {
                    done.SetException(e); // rethrown by Run on the caller's thread; dropped if the step was abandoned
                }
            }
            _queue.Dispose();
        }
    }
}
