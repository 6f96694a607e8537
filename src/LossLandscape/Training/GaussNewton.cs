using LossLandscape.Problem;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="GaussNewton"/>.</summary>
/// <param name="InitialDamping">τ in μ₀ = τ·σmax(J)²; default 1e−3 (Madsen, Nielsen &amp; Tingleff 2004, §3.2: "τ = 10⁻³ … if x₀ is not a good approximation").</param>
/// <param name="MaxDampingIncreases">Rejected trials allowed in one step before the optimizer reports a stall; default 40 (the budget of <see cref="GaussNewtonProjection"/>).</param>
public sealed record GaussNewtonTrainingOptions(double InitialDamping = 1e-3, int MaxDampingIncreases = 40);

/// <summary>
/// Gauss–Newton / Levenberg–Marquardt training with the minimum-norm steps of <see cref="JacobianFactorization"/>:
/// with J = W S Vᵀ the step is s(μ) = −Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀH) = −Jᵀ(JJᵀ + μI)⁻¹H, and s(0) = −J⁺H
/// (singular values at or below the rank tolerance dropped). Each step factors J once and takes the library's one
/// Levenberg–Marquardt step (the Gauss–Newton step when its gain ratio is at least 1/4, else Nielsen's damping; the
/// same rule as the projection onto M, <see cref="GaussNewtonProjection"/>).
/// </summary>
/// <remarks>
/// Gain ratio ρ = (|H|² − |H(p + s)|²)/(|H|² − |H + Js|²). Nielsen's update (H. B. Nielsen, "Damping parameter in
/// Marquardt's method", IMM-REP-1999-05, 1999; Madsen, Nielsen &amp; Tingleff 2004, eq. 3.15): on success
/// μ ← μ·max(1/3, 1 − (2ρ − 1)³), ν ← 2; else μ ← μν, ν ← 2ν. μ persists across steps. A schedule that restarts μ at 0
/// every step and accepts any decrease creeps from a random initialization: on diabetes (n = 769, d = 442) it left L
/// at 3·10³ after 100 steps. When n ≥ ℓd and rank J = ℓd the Gauss–Newton step solves H + Js = 0, so near M the
/// iteration converges quadratically to a point of M = H⁻¹(0) (L ≈ 0 in float64). When n &lt; ℓd it is the
/// least-squares step (Nocedal &amp; Wright §10.3) and the run ends at a stationary point with L &gt; 0
/// (<see cref="SolverStatus.Stalled"/>), the generic case: H: ℝⁿ → ℝ^{ℓd} misses 0. J is factored by the route rule of
/// <see cref="JacobianFactorization.ChooseRoute"/>, chosen at the first step and kept for the run.
/// </remarks>
public sealed class GaussNewton(GaussNewtonTrainingOptions? options = null) : Optimizer
{
    private readonly GaussNewtonTrainingOptions _options = options ?? new GaussNewtonTrainingOptions();
    private LevenbergMarquardt? _damping;
    private JacobianRoute _route = JacobianRoute.Auto;
    private bool _choleskyRoute;

    /// <inheritdoc/>
    public override string Name => "gauss-newton";

    /// <summary>The current Levenberg–Marquardt damping μ (NaN before the first step).</summary>
    public double Damping => _damping?.Damping ?? double.NaN;

    /// <summary>The route J is factored by, chosen at the first step (<see cref="JacobianRoute.Auto"/> before it).</summary>
    public JacobianRoute Route => _route;

    /// <inheritdoc/>
    /// <remarks>After the first step it names the route: the SVD of J, the Gram matrix JJᵀ built per layer with the
    /// steps Jᵀ(JJᵀ + μI)⁻¹H taken by one vector–Jacobian product, J never formed, or (n &lt; ℓd) the n × n normal
    /// equations (JᵀJ + μI)s = JᵀH.</remarks>
    public override string Describe() => $"Gauss–Newton / Levenberg–Marquardt (minimum-norm steps −J⁺H; Nielsen damping, μ₀ = {_options.InitialDamping:G3}·σmax²" + _route switch
    {
        JacobianRoute.Svd => "; J factored by its SVD)",
        JacobianRoute.Gram => "; J never formed: the Gram matrix JJᵀ per layer, steps by one vector–Jacobian product"
            + (_choleskyRoute ? ", systems solved by Cholesky)" : ")"),
        JacobianRoute.Normal => "; n < ℓd: the n × n normal equations (JᵀJ + μI)s = JᵀH by the eigendecomposition of JᵀJ)",
        _ => ")",
    };

    /// <inheritdoc/>
    /// <exception cref="MemoryBudgetExceededException">
    /// At the first step: the factorization of J (<see cref="GramCholesky.StepBytes"/>) does not fit the budget of <paramref name="limits"/>.
    /// </exception>
    public override StepOutcome Step(IResidualProblem map, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.LossFunction.RequireResidualSum("Gauss–Newton training (steps on the residuals H)");
        ArgumentNullException.ThrowIfNull(map);
        limits ??= RunLimits.Default;
        if (_route == JacobianRoute.Auto)
        {
            _route = JacobianFactorization.ChooseRoute(map, limits);
            _choleskyRoute = GramCholesky.Applies(map, _route);
            limits.Require($"Gauss–Newton training (J is {map.Constraints} × {map.ParameterCount})",
                GramCholesky.StepBytes(map, _route),
                "use a first-order optimizer (adam, lbfgs) or a subset of the data", BudgetRemedy.Method | BudgetRemedy.Rows);
            _damping = new LevenbergMarquardt(_options.InitialDamping, _options.MaxDampingIncreases);
        }
        using var scope = NewDisposeScope();
        var h = map.Residuals();
        var outcome = _damping!.Step(map, _route, h, limits.WithoutCancellation());
        Evaluations += 1 + outcome.Trials;
        return outcome.Accepted ? StepOutcome.Moved : new StepOutcome(true, outcome.Stall);
    }
}
