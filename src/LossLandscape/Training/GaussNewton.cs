using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="GaussNewton"/>.</summary>
/// <param name="InitialDamping">τ in μ₀ = τ·σmax(J)²; default 1e−3 (Madsen, Nielsen &amp; Tingleff 2004, §3.2: "τ = 10⁻³ … if x₀ is not a good approximation").</param>
/// <param name="MaxDampingIncreases">Rejected trials allowed in one step before the optimizer reports a stall; default 40 (the budget of <see cref="GaussNewtonProjection"/>).</param>
public sealed record GaussNewtonTrainingOptions(double InitialDamping = 1e-3, int MaxDampingIncreases = 40);

/// <summary>
/// Gauss–Newton / Levenberg–Marquardt training with the minimum-norm steps of <see cref="GaussNewtonProjection"/>:
/// with J = W S Vᵀ (thin SVD) the step is s(μ) = −Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀH) = −Jᵀ(JJᵀ + μI)⁻¹H, and s(0) = −J⁺H
/// (singular values at or below the rank tolerance dropped). Each step first tries the Gauss–Newton step s(0) and
/// takes it when its gain ratio ρ ≥ 1/4; otherwise it runs Levenberg–Marquardt with Nielsen's damping update.
/// </summary>
/// <remarks>
/// Gain ratio ρ = (|H|² − |H(p + s)|²)/(|H|² − |H + Js|²), the predicted decrease being
/// Σᵢ (wᵢᵀH)²(1 − (μ/(σᵢ² + μ))²). Nielsen's update (Madsen, Nielsen &amp; Tingleff, "Methods for non-linear least
/// squares problems", 2004, Algorithm 3.16, eq. 3.15): accept when ρ &gt; 0 and set μ ← μ·max(1/3, 1 − (2ρ − 1)³), ν ← 2;
/// else μ ← μν, ν ← 2ν. μ persists across steps. Project's schedule (μ restarted at 0 every step, any decrease
/// accepted) creeps from a random initialization: on diabetes (n = 769, d = 442) it left L at 3·10³ after 100 steps.
/// When n ≥ ℓd and rank J = ℓd the Gauss–Newton step solves H + Js = 0, so near M the iteration converges
/// quadratically to a point of M = H⁻¹(0) (L ≈ 0 in float64). When n &lt; ℓd it is the least-squares step
/// (Nocedal &amp; Wright §10.3) and the run ends at a stationary point with L &gt; 0 (<see cref="SolverStatus.Stalled"/>),
/// the generic case: H: ℝⁿ → ℝ^{ℓd} misses 0. J is factored densely (QR, then the SVD of the small triangle) when
/// ℓd·n ≤ <see cref="GaussNewtonProjection.DenseJacobianLimit"/> and min(ℓd, n) ≤ 1500, else through
/// K = JJᵀ = W S² Wᵀ (<see cref="GramMatrix"/>), with Jᵀz by one reverse pass.
/// </remarks>
public sealed class GaussNewton(GaussNewtonTrainingOptions? options = null) : Optimizer
{
    private readonly GaussNewtonTrainingOptions _options = options ?? new GaussNewtonTrainingOptions();
    private double _mu = double.NaN;
    private double _nu = 2;

    /// <inheritdoc/>
    public override string Name => "gauss-newton";

    /// <summary>The current Levenberg–Marquardt damping μ (NaN before the first step).</summary>
    public double Damping => _mu;

    /// <inheritdoc/>
    public override string Describe() => $"Gauss–Newton / Levenberg–Marquardt (minimum-norm steps −J⁺H; Nielsen damping, μ₀ = {_options.InitialDamping:G3}·σmax²)";

    /// <inheritdoc/>
    public override StepOutcome Step(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        var p = ParameterVector.Get(map.Model);
        var h = map.Residuals();
        double before = h.dot(h).item<double>();
        using var factors = JacobianFactorization.At(map, allowTall: true, maxDenseRank: 1500);
        Evaluations++;
        if (factors.Sigma.Length == 0 || factors.Sigma[0] == 0)
        {
            return new StepOutcome(true, "J = 0");
        }
        double scale = factors.Sigma[0] * factors.Sigma[0];
        if (double.IsNaN(_mu))
        {
            _mu = _options.InitialDamping * scale;
        }
        var c = factors.Left.t().matmul(h).data<double>().ToArray(); // wᵢᵀH

        // The Gauss–Newton step first (μ = 0, σ ≤ tolerance dropped).
        var (ratio, _) = Try(map, factors, p, h, c, before, 0);
        if (ratio >= 0.25)
        {
            if (ratio > 0.75)
            {
                _mu /= 3;
            }
            return StepOutcome.Moved;
        }
        for (int attempt = 0; attempt < _options.MaxDampingIncreases; attempt++)
        {
            var (rho, predicted) = Try(map, factors, p, h, c, before, _mu);
            if (rho > 0)
            {
                _mu *= Math.Max(1.0 / 3, 1 - Math.Pow(2 * rho - 1, 3));
                _nu = 2;
                return StepOutcome.Moved;
            }
            if (!(predicted > 0))
            {
                break; // nothing left to predict: H is orthogonal to the range of J (a stationary point) or at rounding level
            }
            _mu *= _nu;
            _nu *= 2;
        }
        ParameterVector.Set(map.Model, p);
        return new StepOutcome(true, "no Levenberg–Marquardt damping decreases |H|² (a stationary point of L, or the rounding floor)");
    }

    /// <summary>Moves to p + s(μ); returns (ρ, predicted decrease). Leaves the model at p + s(μ) (the caller restores on rejection).</summary>
    private (double Ratio, double Predicted) Try(ResidualMap map, JacobianFactorization factors, Tensor p, Tensor h, double[] c, double before, double mu)
    {
        using var scope = NewDisposeScope();
        var sigma = factors.Sigma;
        var weights = new double[sigma.Length];
        double predicted = 0;
        for (int i = 0; i < sigma.Length; i++)
        {
            double s = sigma[i];
            if (mu == 0 && s <= factors.Tolerance)
            {
                continue;
            }
            weights[i] = s / (s * s + mu);
            double damped = mu / (s * s + mu);
            predicted += c[i] * c[i] * (1 - damped * damped);
        }
        var step = factors.RightTimes(tensor(weights.Select((w, i) => w * c[i]).ToArray(), dtype: float64));
        ParameterVector.Set(map.Model, p - step);
        Evaluations++;
        var after = map.Residuals();
        double actual = before - after.dot(after).item<double>();
        double ratio = predicted > 0 && double.IsFinite(actual) ? actual / predicted : double.NegativeInfinity;
        if (!(ratio > 0) || (mu == 0 && ratio < 0.25))
        {
            ParameterVector.Set(map.Model, p);
        }
        return (ratio, predicted);
    }
}
