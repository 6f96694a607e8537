using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>
/// What the trained paths (<see cref="CurveTraining"/>, <see cref="NudgedElasticBand"/>) share: one evaluation of
/// (L, ∇L) at a point, the heavy-ball momentum and the step-size rule lr = (1 − β)/λ̂.
/// </summary>
internal static class TrainedPathSteps
{
    /// <summary>
    /// Heavy-ball momentum β = 0.9: Garipov et al. (2018) train their curves by SGD with momentum 0.9, and the same rule
    /// moves NEB's pivots. With lr = (1 − β)/λ̂ the iteration is stable on a quadratic of curvature up to
    /// 2(1 + β)/lr = 38λ̂ (Polyak 1964), and its steady step along a constant gradient is lr/(1 − β) = 1/λ̂.
    /// </summary>
    public const double Momentum = 0.9;

    /// <summary>
    /// Power-iteration steps per point for λ̂: at most 20. The step size needs λmax to a few per cent, not to the digits
    /// PowerIteration's default 100 steps give; 20 steps at three points are 60 of the default budget's 2000 evaluations.
    /// </summary>
    public const int PowerIterationsPerPoint = 20;

    /// <summary>
    /// The stopping tolerance of the power iteration, relative change of λ between steps: 1 % (λ̂ sets a step size whose
    /// stability margin is a factor 38, <see cref="Momentum"/>).
    /// </summary>
    public const double PowerTolerance = 1e-2;

    /// <summary>
    /// At most a quarter of the budget goes to estimating λ̂ (small test budgets): the rest are gradient steps.
    /// </summary>
    public const int StepSizeBudgetFraction = 4;

    /// <summary>(L, ∇L) at θ (<see cref="IResidualProblem.LossAndGradient"/>); the problem is left at θ.</summary>
    public static (double Loss, double[] Gradient) LossAndGradient(IResidualProblem map, double[] theta)
    {
        using var scope = NewDisposeScope();
        map.SetPoint(tensor(theta, dtype: float64));
        var (loss, total) = map.LossAndGradient();
        return (loss, total.data<double>().ToArray());
    }

    /// <summary>The step-size rule and what it cost.</summary>
    /// <param name="LearningRate">lr.</param>
    /// <param name="LambdaMax">λ̂, or null when lr was given.</param>
    /// <param name="HessianVectorProducts">Hessian-vector products spent on λ̂.</param>
    public sealed record StepSize(double LearningRate, double? LambdaMax, long HessianVectorProducts)
    {
        /// <summary>The rule in words, for a result's detail line.</summary>
        public string Describe() => LambdaMax is double lambda
            ? FormattableString.Invariant($"lr {LearningRate:G3} = (1 − β)/λ̂, λ̂ = {lambda:G3} (largest |λ(∇²L)| at A, B and (A + B)/2, {HessianVectorProducts} Hessian-vector products counted as gradient evaluations)")
            : FormattableString.Invariant($"lr {LearningRate:G3} (given)");
    }

    /// <summary>
    /// The step size: <paramref name="given"/> if set; else lr = (1 − β)/λ̂ (β = <see cref="Momentum"/>) with
    /// λ̂ = max |λ_max(∇²L)| over A, B and the midpoint (A + B)/2 of the straight line, each by power iteration (PyHessian's
    /// algorithm, <see cref="PowerIteration"/>) from a seeded Gaussian start. With momentum the steady step along a
    /// constant gradient is lr/(1 − β) = 1/λ̂, the classic safe step of gradient descent (stable below 2/λmax); the
    /// curves' and NEB's points lie between the minima, where ∇²L = 2JᵀJ + 2ΣHₖ∇²Hₖ is only sampled by the three points,
    /// and lr = 1/λ̂ itself (a steady step of 10/λ̂) sent a polygonal chain's bend off to a plateau of high loss on the
    /// tests' network, where (1 − β)/λ̂ did not.
    /// Each Hessian-vector product (one double-backward pass, about two gradients' work) is counted as one gradient
    /// evaluation in <paramref name="counter"/> and comes out of <paramref name="budget"/>.
    /// </summary>
    /// <exception cref="LandscapeInputException">The budget leaves no gradient step after the estimate.</exception>
    public static StepSize Choose(IResidualProblem map, double[] a, double[] b, double? given, int budget, int seed, EvaluationCounter counter)
    {
        if (given is double lr)
        {
            if (!(lr > 0) || double.IsInfinity(lr))
            {
                throw new LandscapeInputException(FormattableString.Invariant($"the learning rate must be a positive number, got {lr}"));
            }
            return new StepSize(lr, null, 0);
        }
        var points = new[] { a, b, Midpoint(a, b) };
        int iterations = Math.Min(PowerIterationsPerPoint, budget / (StepSizeBudgetFraction * points.Length));
        if (iterations < 1)
        {
            throw new LandscapeInputException($"a budget of {budget} evaluations is too small to estimate the step size (≥ {StepSizeBudgetFraction * points.Length} needed); give the learning rate or a larger budget");
        }
        double lambda = 0;
        long products = 0;
        foreach (var point in points)
        {
            using var scope = NewDisposeScope();
            map.SetPoint(tensor(point, dtype: float64));
            var op = new HessianOperator(map);
            var result = PowerIteration.Eigenpairs(op, new PowerIterationOptions(K: 1, MaxIterations: iterations, Tolerance: PowerTolerance, Seed: seed));
            result.Eigenvectors.Dispose();
            products += result.Applications;
            if (result.Eigenvalues.Count > 0 && double.IsFinite(result.Eigenvalues[0]))
            {
                lambda = Math.Max(lambda, Math.Abs(result.Eigenvalues[0]));
            }
        }
        counter.Gradient += products;
        if (!(lambda > 0))
        {
            throw new LandscapeInputException("∇²L is 0 or not finite at A, B and their midpoint: no step size can be derived; give the learning rate");
        }
        return new StepSize((1 - Momentum) / lambda, lambda, products);
    }

    /// <summary>(A + B)/2.</summary>
    public static double[] Midpoint(double[] a, double[] b)
    {
        var m = new double[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            m[i] = 0.5 * (a[i] + b[i]);
        }
        return m;
    }

    /// <summary>Whether every entry is finite.</summary>
    public static bool AllFinite(double[] v)
    {
        foreach (double x in v)
        {
            if (!double.IsFinite(x))
            {
                return false;
            }
        }
        return true;
    }
}
