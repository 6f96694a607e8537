using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>What <see cref="CurveTraining.Train"/> produced.</summary>
/// <param name="Method"><see cref="ConnectMethod.Bezier"/> or <see cref="ConnectMethod.Polychain"/>.</param>
/// <param name="Bends">θ₀ = A, θ₁ … θ_{K−2} (trained), θ_{K−1} = B.</param>
/// <param name="Path">The curve: a <see cref="BezierPath"/> sampled at P points, or a <see cref="PolygonalPath"/> through the bends at t = i/(K − 1).</param>
/// <param name="Steps">Gradient steps taken on the bends.</param>
/// <param name="LearningRate">The base step size (before the schedule).</param>
/// <param name="LambdaMax">λ̂ when the step size was derived from it, else null.</param>
/// <param name="Evaluations">What training cost: the Hessian-vector products of the step size and the steps, as gradient evaluations.</param>
/// <param name="Status">Converged (the budget was spent), Diverged (a non-finite loss; the last finite bends are kept) or Cancelled.</param>
/// <param name="Detail">The run in one line.</param>
public sealed record CurveTrainingResult(ConnectMethod Method, IReadOnlyList<double[]> Bends, ConnectingPath Path, int Steps, double LearningRate, double? LambdaMax,
    EvaluationCounts Evaluations, SolverStatus Status, string Detail);

/// <summary>
/// The trained curves of Garipov et al. (2018): a Bézier curve or a polygonal chain with K bends θ₀ = A, θ_{K−1} = B
/// fixed and θ₁ … θ_{K−2} trainable, started on the straight line (θᵢ = A + i/(K − 1)(B − A)), trained to minimise
/// E_{t∼U(0,1)} L(θ(t)) by stochastic gradient steps: each step draws one t, evaluates g = ∇L(θ(t)) once, and moves every
/// trainable bend by its share ∂θ(t)/∂θᵢ · g (the Bernstein polynomial for the Bézier curve, the hat function of bend i
/// for the chain), with heavy-ball momentum.
/// </summary>
/// <remarks>
/// <para>Garipov, Izmailov, Podoprikhin, Vetrov &amp; Wilson 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling
/// of DNNs", §3: the objective ∫₀¹ L(φ_θ(t)) dt estimated by one t ∼ U(0, 1) per step; polygonal chain and Bézier curve;
/// SGD with momentum 0.9 and their learning-rate schedule (constant for the first half of training, then linear down
/// to 1 % of the base rate at 90 %, then constant).</para>
/// <para>The step size: <see cref="ConnectOptions.LearningRate"/> if given, else (1 − β)/λ̂, λ̂ the largest |eigenvalue| of ∇²L at A, B and (A + B)/2 by power iteration:
/// Garipov's rate 0.03 is for a mean cross-entropy on minibatches and does not carry over to L = Σ|Hₖ|², whose scale
/// depends on the data; λ̂ does. The budget counts gradient evaluations: the step size's Hessian-vector products
/// (one each) plus one per step, so the steps are the budget less those products. The last curve is kept (as Garipov
/// evaluate the curve at the end of training), not the best one seen.</para>
/// </remarks>
public static class CurveTraining
{
    /// <summary>
    /// Trains the curve and measures it (<see cref="PathEvaluation"/>); a run cancelled by the token of <paramref name="limits"/>
    /// keeps its curve, which is still measured. The model is restored to its point afterwards.
    /// </summary>
    public static ConnectionResult Connect(IResidualProblem map, ConnectMethod method, double[] a, double[] b, ConnectOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        var clock = Stopwatch.StartNew();
        var trained = Train(map, method, a, b, options, limits);
        // A cancelled run is still measured: the curve it reached is its result.
        var (profile, measures) = PathEvaluation.Evaluate(map, trained.Path, b, options.Points, trained.Status == SolverStatus.Cancelled ? limits.WithoutCancellation() : limits);
        return new ConnectionResult(method, false, trained.Path, profile, measures, trained.Evaluations, clock.Elapsed.TotalSeconds, trained.Status, trained.Detail, null);
    }

    /// <summary>
    /// ∂θ(t)/∂θᵢ for a curve of <paramref name="bends"/> points: the Bernstein polynomial bᵢ,ₖ₋₁(t) for the Bézier curve, the
    /// hat function max(0, 1 − |t(K − 1) − i|) for the polygonal chain (bend i at t = i/(K − 1)).
    /// </summary>
    public static double Coefficient(ConnectMethod method, int bends, int i, double t) => method switch
    {
        ConnectMethod.Bezier => BezierPath.Bernstein(bends - 1, i, t),
        ConnectMethod.Polychain => Math.Max(0, 1 - Math.Abs((t * (bends - 1)) - i)),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "a trained curve is a Bézier curve or a polygonal chain"),
    };

    /// <summary>
    /// Garipov et al.'s learning-rate factor at the fraction α of training done: 1 for α ≤ ½, then linear down to 0.01 at
    /// α = 0.9, then 0.01.
    /// </summary>
    public static double ScheduleFactor(double alpha) => alpha <= 0.5 ? 1.0 : alpha <= 0.9 ? 1.0 - ((alpha - 0.5) / 0.4 * 0.99) : 0.01;

    /// <summary>
    /// Trains the bends with <see cref="ConnectOptions.MaxEvaluations"/> gradient evaluations, the token of <paramref name="limits"/>
    /// checked before each step (cancelling ends with <see cref="SolverStatus.Cancelled"/>). The model is restored to its point afterwards.
    /// </summary>
    /// <exception cref="LandscapeInputException">Fewer than 3 bends, or a budget too small for the step-size estimate.</exception>
    public static CurveTrainingResult Train(IResidualProblem map, ConnectMethod method, double[] a, double[] b, ConnectOptions options, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        if (method is not (ConnectMethod.Bezier or ConnectMethod.Polychain))
        {
            throw new ArgumentOutOfRangeException(nameof(method), method, "a trained curve is a Bézier curve or a polygonal chain");
        }
        int k = options.Bends;
        if (k < 3)
        {
            throw new LandscapeInputException($"a curve needs at least 3 bends (the endpoints and one trainable bend), got {k}");
        }
        int n = a.Length;
        var saved = map.GetPoint();
        try
        {
            var counter = new EvaluationCounter();
            var bends = new double[k][];
            bends[0] = (double[])a.Clone();
            bends[k - 1] = (double[])b.Clone();
            for (int i = 1; i < k - 1; i++)
            {
                bends[i] = new double[n];
                double s = (double)i / (k - 1);
                for (int j = 0; j < n; j++)
                {
                    bends[i][j] = a[j] + (s * (b[j] - a[j]));
                }
            }
            var step = TrainedPathSteps.Choose(map, a, b, options.LearningRate, options.MaxEvaluations, options.Seed, counter);
            int steps = options.MaxEvaluations - (int)step.HessianVectorProducts;
            var velocity = Enumerable.Range(0, k).Select(_ => new double[n]).ToArray();
            var coefficients = new double[k];
            var rng = new Random(options.Seed);
            var status = SolverStatus.Converged;
            int taken = 0;
            for (int s = 0; s < steps; s++)
            {
                if (limits.IsCancellationRequested)
                {
                    status = SolverStatus.Cancelled;
                    break;
                }
                double t = rng.NextDouble();
                for (int i = 0; i < k; i++)
                {
                    coefficients[i] = Coefficient(method, k, i, t);
                }
                var theta = ConnectingPath.Combine(bends, coefficients);
                var (loss, gradient) = TrainedPathSteps.LossAndGradient(map, theta);
                counter.Gradient++;
                if (!double.IsFinite(loss) || !TrainedPathSteps.AllFinite(gradient))
                {
                    status = SolverStatus.Diverged; // the bends are those of the last finite step
                    break;
                }
                double rate = step.LearningRate * ScheduleFactor((double)s / steps);
                var updated = new double[k][];
                var moved = new double[k][];
                bool finite = true;
                for (int i = 1; i < k - 1; i++)
                {
                    // SGD with momentum on every trainable bend: v ← βv + (∂θ(t)/∂θᵢ)g, θᵢ ← θᵢ − lr·v.
                    var v = (double[])velocity[i].Clone();
                    var bend = (double[])bends[i].Clone();
                    double c = coefficients[i];
                    for (int j = 0; j < n; j++)
                    {
                        v[j] = (TrainedPathSteps.Momentum * v[j]) + (c * gradient[j]);
                        bend[j] -= rate * v[j];
                    }
                    finite &= TrainedPathSteps.AllFinite(bend);
                    (updated[i], moved[i]) = (v, bend);
                }
                if (!finite)
                {
                    status = SolverStatus.Diverged; // the step overflowed: the bends before it are kept
                    break;
                }
                for (int i = 1; i < k - 1; i++)
                {
                    (velocity[i], bends[i]) = (updated[i], moved[i]);
                }
                taken++;
            }
            ConnectingPath path = method == ConnectMethod.Bezier
                ? BezierPath.Create(bends, options.Points)
                : new PolygonalPath(bends.Select((p, i) => new PathVertex(i == k - 1 ? 1.0 : (double)i / (k - 1), p)).ToArray());
            string name = method == ConnectMethod.Bezier ? "Bézier curve" : "polygonal chain";
            string detail = FormattableString.Invariant(
                $"{name}, {k} bends, {taken} steps with t ~ U(0,1) (seed {options.Seed}), {counter.Gradient} gradient evaluations; {step.Describe()}; momentum {TrainedPathSteps.Momentum}, Garipov's schedule; the last curve kept");
            return new CurveTrainingResult(method, bends, path, taken, step.LearningRate, step.LambdaMax, counter.Snapshot(), status, detail);
        }
        finally
        {
            map.SetPoint(saved);
            saved.Dispose();
        }
    }
}
