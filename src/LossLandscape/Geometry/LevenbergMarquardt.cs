using LossLandscape.Problem;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Geometry;

/// <summary>The outcome of one <see cref="LevenbergMarquardt"/> step.</summary>
/// <param name="Accepted">Whether the model moved (|H|² decreased with a positive gain ratio).</param>
/// <param name="Trials">Trial points evaluated (one forward pass each).</param>
/// <param name="MaxAbsResidual">max|H| at the model's point after the step (the old point when rejected).</param>
/// <param name="Stall">Why no step was taken, or null.</param>
internal readonly record struct LevenbergMarquardtOutcome(bool Accepted, int Trials, double MaxAbsResidual, string? Stall);

/// <summary>
/// The one Levenberg–Marquardt step of the library, on min ½|H(p)|² with the minimum-norm steps of a
/// <see cref="JacobianFactorization"/>: s(μ) = −Jᵀ(JJᵀ + μI)⁻¹H = −Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀH). Used by the projection
/// onto M (<see cref="GaussNewtonProjection"/>) and by training (<see cref="Training.GaussNewton"/>); μ and ν persist
/// across the steps of one run.
/// </summary>
/// <remarks>
/// <para>Each step first tries the Gauss–Newton step s(0) = −J⁺H (σᵢ ≤ the rank tolerance dropped) and takes it when its
/// gain ratio ρ ≥ <see cref="GaussNewtonAcceptance"/>; near a regular point of M this is Gauss–Newton, which converges
/// quadratically. Otherwise it tries s(μ) until ρ &gt; 0.</para>
/// <para>Gain ratio ρ = (|H|² − |H(p + s)|²)/(|H|² − |H + Js|²), the predicted decrease being
/// Σᵢ (wᵢᵀH)²(1 − (μ/(σᵢ² + μ))²).</para>
/// <para>Damping rule (H. B. Nielsen, "Damping parameter in Marquardt's method", IMM-REP-1999-05, Technical University
/// of Denmark, 1999; also Madsen, Nielsen &amp; Tingleff, "Methods for non-linear least squares problems", 2004,
/// eq. 3.15 and Algorithm 3.16): on success μ ← μ·max(1/3, 1 − (2ρ − 1)³) and ν ← 2; on failure μ ← μ·ν and ν ← 2ν.
/// An accepted Gauss–Newton step updates μ by the same rule. μ₀ = τ·σmax(J)² at the first step.</para>
/// </remarks>
internal sealed class LevenbergMarquardt(double initialDamping, int maxDampingIncreases)
{
    /// <summary>
    /// The gain ratio an undamped Gauss–Newton step needs to be taken: 1/4, the threshold below which a trust-region
    /// method shrinks its region (Nocedal &amp; Wright, Numerical Optimization, 2nd ed., Algorithm 4.1). Chosen: a step
    /// that achieves a quarter of the decrease its linear model predicted is trusted.
    /// </summary>
    public const double GaussNewtonAcceptance = 0.25;

    /// <summary>
    /// τ in μ₀ = τ·σmax(J)²: 1e−3, Madsen, Nielsen &amp; Tingleff (2004), §3.2: "τ = 10⁻³ … if x₀ is not a good
    /// approximation" (the starting point of training or of a projection is not known to be close).
    /// </summary>
    public const double DefaultInitialDamping = 1e-3;

    /// <summary>Rejected damped trials in one step before it is reported stalled: 40, so μ can grow by ν's doubling far past any σmax².</summary>
    public const int DefaultMaxDampingIncreases = 40;

    private double _nu = 2;

    /// <summary>The current damping μ (NaN before the first step).</summary>
    public double Damping { get; private set; } = double.NaN;

    /// <summary>
    /// One step from the model's current point by <paramref name="route"/>: by Cholesky on the Gram matrix where
    /// <see cref="GramCholesky.Applies"/> (large ℓd), else with J factored there (<see cref="JacobianFactorization"/>); the
    /// token of <paramref name="limits"/> (default none) is checked between the blocks of the factorization.
    /// </summary>
    public LevenbergMarquardtOutcome Step(IResidualProblem problem, JacobianRoute route, Tensor h, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        limits = (limits ?? RunLimits.Default).WithoutProgress();
        if (GramCholesky.Applies(problem, route))
        {
            using var gram = GramMatrix.Compute(problem, limits);
            return Step(problem, gram, h);
        }
        using var factors = JacobianFactorization.Factor(problem, route, limits);
        return Step(problem, factors, h);
    }

    /// <summary>
    /// One step from the model's current point, with J factored there and <paramref name="h"/> = H(p). Leaves the model
    /// at the new point when accepted, at the old one otherwise.
    /// </summary>
    public LevenbergMarquardtOutcome Step(IResidualProblem problem, JacobianFactorization factors, Tensor h)
    {
        ArgumentNullException.ThrowIfNull(factors);
        using var scope = NewDisposeScope();
        return Step(problem, new SpectralSystem(factors, h), h);
    }

    /// <summary>
    /// One step with the systems (K + μI)w = H solved by Cholesky on the Gram matrix K = JJᵀ (<see cref="GramCholesky"/>):
    /// s(μ) = −Jᵀw by one vector–Jacobian product; the undamped step needs K positive definite (full row rank).
    /// </summary>
    public LevenbergMarquardtOutcome Step(IResidualProblem map, Tensor gram, Tensor h)
    {
        using var scope = NewDisposeScope();
        return Step(map, new CholeskySystem(map, gram, h), h);
    }

    private LevenbergMarquardtOutcome Step(IResidualProblem problem, ILinearizedSystem system, Tensor h)
    {
        var p = problem.GetPoint();
        double before = h.dot(h).item<double>();
        double oldMax = h.abs().max().item<double>();
        if (!(system.SigmaMaxSquared > 0))
        {
            return new LevenbergMarquardtOutcome(false, 0, oldMax, "J = 0");
        }
        if (double.IsNaN(Damping))
        {
            Damping = initialDamping * system.SigmaMaxSquared;
        }
        int trials = 1;
        var (ratio, _, max) = Try(problem, system, p, before, 0);
        if (ratio >= GaussNewtonAcceptance)
        {
            Succeeded(ratio);
            return new LevenbergMarquardtOutcome(true, trials, max, null);
        }
        for (int attempt = 0; attempt < maxDampingIncreases; attempt++)
        {
            trials++;
            (ratio, double predicted, max) = Try(problem, system, p, before, Damping);
            if (ratio > 0)
            {
                Succeeded(ratio);
                return new LevenbergMarquardtOutcome(true, trials, max, null);
            }
            if (!(predicted > 0) && !double.IsNaN(predicted))
            {
                break; // nothing left to predict: H is orthogonal to the range of J (a stationary point) or at rounding level
            }
            Damping *= _nu;
            _nu *= 2;
        }
        problem.SetPoint(p);
        return new LevenbergMarquardtOutcome(false, trials, oldMax, "no Levenberg–Marquardt damping decreases |H|² (a stationary point of L, or the rounding floor)");
    }

    private void Succeeded(double ratio)
    {
        Damping *= Math.Max(1.0 / 3, 1 - Math.Pow(2 * ratio - 1, 3));
        _nu = 2;
    }

    /// <summary>
    /// Moves to p + s(μ); returns (ρ, predicted decrease, max|H| there). Restores p unless the step is acceptable. A system
    /// that cannot be solved at μ (a singular K for Cholesky) predicts NaN and is not tried.
    /// </summary>
    private static (double Ratio, double Predicted, double Max) Try(IResidualProblem problem, ILinearizedSystem system, Tensor p, double before, double mu)
    {
        using var scope = NewDisposeScope();
        var (step, predicted) = system.Solve(mu);
        if (step is null)
        {
            return (double.NegativeInfinity, double.NaN, double.NaN);
        }
        problem.SetPoint(p.Plus(step));
        var after = problem.Residuals();
        double actual = before - after.dot(after).item<double>();
        double ratio = predicted > 0 && double.IsFinite(actual) ? actual / predicted : double.NegativeInfinity;
        bool keep = mu == 0 ? ratio >= GaussNewtonAcceptance : ratio > 0;
        if (!keep)
        {
            problem.SetPoint(p);
        }
        return (ratio, predicted, after.abs().max().item<double>());
    }

    /// <summary>The linear model H + Js of one step: its scale σmax² and the damped step with its predicted decrease |H|² − |H + Js|².</summary>
    private interface ILinearizedSystem
    {
        double SigmaMaxSquared { get; }

        (Tensor? Step, double Predicted) Solve(double mu);
    }

    /// <summary>s(μ) = −Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀH) from the factorization; at μ = 0 the σᵢ ≤ tolerance are dropped (−J⁺H).</summary>
    private sealed class SpectralSystem(JacobianFactorization factors, Tensor h) : ILinearizedSystem
    {
        private readonly Tensor _coefficients = factors.Coefficients(h);

        public double SigmaMaxSquared => factors.SigmaMax * factors.SigmaMax;

        public (Tensor? Step, double Predicted) Solve(double mu)
        {
            var c = _coefficients.data<double>().ToArray(); // wᵢᵀH
            var sigma = factors.Sigma;
            double predicted = 0;
            for (int i = 0; i < sigma.Count; i++)
            {
                double s = sigma[i];
                if (mu == 0 && s <= factors.Tolerance)
                {
                    continue;
                }
                double damped = mu / (s * s + mu);
                predicted += c[i] * c[i] * (1 - damped * damped);
            }
            return (-factors.StepFromCoefficients(_coefficients, mu), predicted);
        }
    }

    /// <summary>
    /// w = (K + μI)⁻¹H by Cholesky, s = −Jᵀw; then H + Js = H − Kw = μw, so the predicted decrease is |H|² − μ²|w|².
    /// σmax² is the largest Ritz value of a short Lanczos run on K (it only sets μ₀).
    /// </summary>
    private sealed class CholeskySystem(IResidualProblem map, Tensor gram, Tensor h) : ILinearizedSystem
    {
        /// <summary>
        /// Lanczos steps for σmax² = λmax(K), which sets μ₀ = τ·σmax²: 60, enough for the largest Ritz value of a Gram matrix to
        /// converge to many digits (its top is well separated), so both routes start from the same μ₀.
        /// </summary>
        private const int EstimateSteps = 60;

        public double SigmaMaxSquared { get; } = GramCholesky.LargestRitz(gram, EstimateSteps)?.Theta ?? 0;

        public (Tensor? Step, double Predicted) Solve(double mu)
        {
            var shifted = mu == 0 ? gram : gram.Plus(eye(gram.shape[0], dtype: gram.dtype, device: gram.device).Times(mu));
            using var factor = GramCholesky.CholeskyFactor(shifted);
            if (factor is null)
            {
                return (null, double.NaN);
            }
            var w = cholesky_solve(h.unsqueeze(1), factor).squeeze(1);
            var step = -new Operators.JacobianTransposeOperator(map).Apply(w);
            double before = h.dot(h).item<double>();
            double predicted = before - (mu * mu * w.dot(w).item<double>());
            return (step, predicted);
        }
    }
}
