using System.Diagnostics;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
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
/// Gauss–Newton (<see cref="GaussNewton"/> on its Gram route) is <see cref="GaussNewtonSteps"/>. L-BFGS is not distributed
/// here: its line search runs on a <c>ResidualMap</c>.
/// </remarks>
public static class DistributedTraining
{
    /// <summary>The optimizer's name, as <see cref="GradientDescent.Name"/>.</summary>
    public const string GradientDescentName = "gd";

    /// <summary>The optimizer's name, as <see cref="GaussNewton.Name"/>.</summary>
    public const string GaussNewtonName = "gauss-newton";

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
        double? rate = learningRate;
        var result = Loop(session, options, progress, cancellation, () =>
        {
            using var scope = NewDisposeScope();
            rate ??= InverseSharpness(session);
            var g = session.Gradient();
            if (g.abs().max().item<double>() == 0)
            {
                return (1, "∇L = 0");
            }
            // GradientDescent.Step: p − η∇L, in the same order of operations.
            session.SetPoint(tensor(session.Point.ToArray(), dtype: ScalarType.Float64).sub_(g.mul_(rate.Value)));
            return (1, null);
        });
        return result with { Optimizer = GradientDescentName, Settings = $"gradient descent, η = {rate:G4}{(learningRate is null ? " (1/λmax at p₀)" : "")} (on the cluster)" };
    }

    /// <summary>
    /// Runs at most <see cref="TrainingOptions.Steps"/> Levenberg–Marquardt steps, each from K = JJᵀ of the shards' factors
    /// (<see cref="ClusterSession.Gram"/>) and one distributed vector–Jacobian product per trial; the session ends at the best point.
    /// </summary>
    /// <remarks>
    /// The single-process Gram route of <see cref="GaussNewton"/>: K = WΛWᵀ, c = WᵀH, s(μ) = −Jᵀ W g with gᵢ = cᵢ/(σᵢ² + μ)
    /// (at μ = 0 the directions with σᵢ ≤ the Gram route's tolerance √(ℓd·ε)·σmax are dropped: the minimum-norm step −J⁺H);
    /// the gain ratio ρ = (|H|² − |H(p + s)|²)/(|H|² − |H + Js|²), the undamped step kept when ρ ≥ 1/4, damped trials from
    /// μ₀ = <paramref name="initialDamping"/>·σmax², with Nielsen's update (H. B. Nielsen, "Damping parameter in Marquardt's
    /// method", IMM-REP-1999-05).
    /// </remarks>
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
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(options);
        int m = session.Constraints;
        // K, its eigenvectors and the driver's stacked factors: six ℓd × ℓd matrices at most.
        const int gramMatrices = 6;
        MemoryBudget.Require($"distributed Gauss–Newton training (JJᵀ, {m} × {m})", checked(gramMatrices * MemoryBudget.DenseMatrixBytes(m, m)), budgetBytes,
            "use gradient descent (--optimizer gd) or a subset of the data");
        double damping = double.NaN, nu = 2;
        var result = Loop(session, options, progress, cancellation, () =>
        {
            using var scope = NewDisposeScope();
            var h = session.Residuals();
            var (lambda, vectors) = linalg.eigh(session.Gram());
            var order = arange(lambda.shape[0] - 1, -1, -1, dtype: ScalarType.Int64);
            var sigma = lambda.index_select(0, order).data<double>().Select(v => Math.Sqrt(Math.Max(v, 0))).ToArray();
            var w = vectors.index_select(1, order);
            double sigmaMax = sigma.Length > 0 ? sigma[0] : 0;
            double tolerance = RankDecision.FromSingularValues(sigma, m, Math.Sqrt(m * Float64.Epsilon) * sigmaMax, DistributedCertificate.Basis).Tolerance;
            var c = w.t().matmul(h);
            var cs = c.data<double>().ToArray();
            var p = tensor(session.Point.ToArray(), dtype: ScalarType.Float64);
            double before = h.dot(h).item<double>();
            if (!(sigmaMax * sigmaMax > 0))
            {
                return (0, "J = 0");
            }
            if (double.IsNaN(damping))
            {
                damping = initialDamping * sigmaMax * sigmaMax;
            }
            int trials = 0;
            (double Ratio, double Predicted) Try(double mu)
            {
                using var trialScope = NewDisposeScope();
                trials++;
                var weights = new double[sigma.Length];
                double predicted = 0;
                for (int i = 0; i < sigma.Length; i++)
                {
                    double s = sigma[i];
                    weights[i] = mu == 0 && s <= tolerance ? 0 : 1 / (s * s + mu);
                    if (!double.IsFinite(weights[i]))
                    {
                        weights[i] = 0; // σ = 0 and μ = 0: the direction carries nothing.
                    }
                    if (mu == 0 && s <= tolerance)
                    {
                        continue;
                    }
                    double damped = mu / (s * s + mu);
                    predicted += cs[i] * cs[i] * (1 - damped * damped);
                }
                var g = c * tensor(weights, dtype: ScalarType.Float64);
                var step = -session.JacobianTransposeBlock(w.matmul(g).unsqueeze(1)).squeeze(1);
                session.SetPoint(p + step);
                var after = session.Residuals();
                double actual = before - after.dot(after).item<double>();
                double ratio = predicted > 0 && double.IsFinite(actual) ? actual / predicted : double.NegativeInfinity;
                bool keep = mu == 0 ? ratio >= GaussNewtonAcceptance : ratio > 0;
                if (!keep)
                {
                    session.SetPoint(p);
                }
                return (ratio, predicted);
            }
            void Succeeded(double ratio)
            {
                damping *= Math.Max(1.0 / 3, 1 - Math.Pow(2 * ratio - 1, 3));
                nu = 2;
            }
            var (ratio, _) = Try(0);
            if (ratio >= GaussNewtonAcceptance)
            {
                Succeeded(ratio);
                return (1 + trials, null);
            }
            for (int attempt = 0; attempt < maxDampingIncreases; attempt++)
            {
                (ratio, double predicted) = Try(damping);
                if (ratio > 0)
                {
                    Succeeded(ratio);
                    return (1 + trials, null);
                }
                if (!(predicted > 0) && !double.IsNaN(predicted))
                {
                    break; // nothing left to predict: H is orthogonal to the range of J, or at rounding level
                }
                damping *= nu;
                nu *= 2;
            }
            return (1 + trials, "no Levenberg–Marquardt damping decreases |H|² (a stationary point of L, or the rounding floor)");
        });
        return result with
        {
            Optimizer = GaussNewtonName,
            Settings = $"Gauss–Newton / Levenberg–Marquardt (minimum-norm steps −J⁺H; Nielsen damping, μ₀ = {initialDamping:G3}·σmax²; on the cluster: JJᵀ from the shards' factors, steps by one distributed vector–Jacobian product)",
        };
    }

    /// <summary>μ₀/σmax² by default: <see cref="GaussNewtonTrainingOptions.InitialDamping"/>'s 1e-3.</summary>
    public const double GaussNewtonDefaultDamping = 1e-3;

    /// <summary>Damped trials per step by default: <see cref="GaussNewtonTrainingOptions.MaxDampingIncreases"/>'s 40.</summary>
    public const int GaussNewtonDefaultDampingIncreases = 40;

    /// <summary>The gain ratio above which the undamped Gauss–Newton step is kept: 1/4, as the single-process optimizer.</summary>
    private const double GaussNewtonAcceptance = 0.25;

    /// <summary>
    /// The loop of <see cref="Trainer.Run"/> over a step that moves the session and returns (evaluations, stall note or null).
    /// </summary>
    private static TrainingResult Loop(ClusterSession session, TrainingOptions options, IProgress<TrainingProgress>? progress,
        CancellationToken cancellation, Func<(int Evaluations, string? Stall)> takeStep)
    {
        if (options.Steps < 0)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the number of steps must be ≥ 0, got {options.Steps}"), nameof(options));
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
            var (used, stall) = takeStep();
            evaluations += used;
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
            if (stall is not null)
            {
                status = ConvergenceTest.IsMet(loss, scale: 0, relativeTolerance: 0, absoluteTolerance: target) ? SolverStatus.Converged : SolverStatus.Stalled;
                note = stall;
                break;
            }
        }
        if (!session.Point.SequenceEqual(best))
        {
            using var scope = NewDisposeScope();
            session.SetPoint(tensor(best, dtype: ScalarType.Float64));
        }
        return new TrainingResult("", "", status, step, history, bestLoss, bestStep, best, target, evaluations, watch.Elapsed.TotalSeconds, note);
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
