using LossLandscape.Problem;
using LossLandscape.Geometry;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="Lbfgs"/>.</summary>
/// <param name="History">Curvature pairs kept, m; default 10 (Nocedal &amp; Wright §7.2: "m between 3 and 20").</param>
/// <param name="LineSearch">Strong Wolfe (default) or backtracking Armijo.</param>
/// <param name="C1">Sufficient decrease constant; default 1e−4 (Nocedal &amp; Wright §3.1).</param>
/// <param name="C2">Curvature constant; default 0.9, the value for quasi-Newton methods (Nocedal &amp; Wright §3.1).</param>
/// <param name="MaxEvaluations">Loss-and-gradient evaluations allowed per line search; default 25 (PyTorch's max_eval = 1.25·max_iter).</param>
public sealed record LbfgsOptions(int History = 10, LineSearchKind LineSearch = LineSearchKind.StrongWolfe, double C1 = 1e-4, double C2 = 0.9, int MaxEvaluations = 25);

/// <summary>
/// Limited-memory BFGS (Nocedal &amp; Wright, Numerical Optimization, 2nd ed., Algorithm 7.5): direction d = −H∇L by the
/// two-loop recursion (Algorithm 7.4) over the last m pairs sₖ = pₖ₊₁ − pₖ, yₖ = ∇Lₖ₊₁ − ∇Lₖ with H₀ = γI,
/// γ = sᵀy/yᵀy (eq. 7.20); step length by a line search. One <see cref="Step(LossLandscape.Problem.IResidualProblem, RunLimits?)"/> is one iteration.
/// </summary>
/// <remarks>
/// The first iteration (no pairs) tries α = min(1, 1/‖∇L‖₁) along −∇L (as PyTorch's LBFGS does). A pair with
/// sᵀy ≤ 1e−10·‖s‖‖y‖ is skipped (the strong Wolfe conditions guarantee sᵀy &gt; 0; backtracking does not). A direction
/// that is not a descent direction resets the memory to steepest descent.
/// </remarks>
public sealed class Lbfgs(LbfgsOptions? options = null) : Optimizer
{
    private readonly LbfgsOptions _options = Validate(options ?? new LbfgsOptions());
    private readonly List<(Tensor S, Tensor Y, double Rho)> _pairs = [];
    private Tensor? _gradient;
    private double _value;

    /// <inheritdoc/>
    public override string Name => "lbfgs";

    /// <inheritdoc/>
    public override string Describe() =>
        $"L-BFGS, m = {_options.History}, {(_options.LineSearch == LineSearchKind.StrongWolfe ? "strong Wolfe" : "Armijo backtracking")} line search (c₁ = {_options.C1:G3}, c₂ = {_options.C2:G3})";

    /// <inheritdoc/>
    public override StepOutcome Step(IResidualProblem problem, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        using var scope = NewDisposeScope();
        if (_gradient is null)
        {
            var (value, gradient) = problem.LossAndGradient();
            Evaluations++;
            _value = value;
            _gradient = gradient.DetachFromDisposeScope();
        }
        var g = _gradient;
        double gNorm1 = g.abs().sum().item<double>();
        if (gNorm1 == 0)
        {
            return new StepOutcome(true, "∇L = 0");
        }
        var direction = TwoLoop(g).neg_();
        double slope = g.dot(direction).item<double>();
        if (!(slope < 0))
        {
            ClearPairs();
            direction = g.neg();
            slope = -g.dot(g).item<double>();
        }
        double alpha0 = _pairs.Count == 0 ? Math.Min(1.0, 1.0 / gNorm1) : 1.0;
        var p = problem.GetPoint();
        (double, Tensor) Evaluate(double alpha)
        {
            problem.SetPoint(p.Plus(direction.Times(alpha)));
            return problem.LossAndGradient();
        }
        var accepted = LineSearch.Search(_options.LineSearch, Evaluate, direction, _value, slope, alpha0, _options.C1, _options.C2, _options.MaxEvaluations, out int used);
        Evaluations += used;
        if (accepted is null)
        {
            problem.SetPoint(p);
            return new StepOutcome(true, $"the line search found no acceptable step in {used} evaluations");
        }
        problem.SetPoint(p.Plus(direction.Times(accepted.Alpha)));
        var s = direction.Times(accepted.Alpha);
        var y = accepted.Gradient - g;
        double sy = s.dot(y).item<double>();
        if (sy > 1e-10 * s.norm().item<double>() * y.norm().item<double>())
        {
            if (_pairs.Count == _options.History)
            {
                _pairs[0].S.Dispose();
                _pairs[0].Y.Dispose();
                _pairs.RemoveAt(0);
            }
            _pairs.Add((s.DetachFromDisposeScope(), y.DetachFromDisposeScope(), 1.0 / sy));
        }
        _gradient.Dispose();
        _gradient = accepted.Gradient.DetachFromDisposeScope();
        _value = accepted.Value;
        return StepOutcome.Moved;
    }

    /// <summary>Algorithm 7.4: r = H∇L from the stored pairs, with H₀ = γI.</summary>
    private Tensor TwoLoop(Tensor g)
    {
        var q = g.clone();
        var alphas = new double[_pairs.Count];
        for (int i = _pairs.Count - 1; i >= 0; i--)
        {
            alphas[i] = _pairs[i].Rho * _pairs[i].S.dot(q).item<double>();
            q.PlusScaledInPlace(_pairs[i].Y, -alphas[i]);
        }
        if (_pairs.Count > 0)
        {
            var (s, y, _) = _pairs[^1];
            q.TimesInPlace(s.dot(y).item<double>() / y.dot(y).item<double>());
        }
        for (int i = 0; i < _pairs.Count; i++)
        {
            double beta = _pairs[i].Rho * _pairs[i].Y.dot(q).item<double>();
            q.PlusScaledInPlace(_pairs[i].S, alphas[i] - beta);
        }
        return q;
    }

    private void ClearPairs()
    {
        foreach (var (s, y, _) in _pairs)
        {
            s.Dispose();
            y.Dispose();
        }
        _pairs.Clear();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        ClearPairs();
        _gradient?.Dispose();
    }

    private static LbfgsOptions Validate(LbfgsOptions o)
    {
        if (o.History < 1 || o.MaxEvaluations < 1)
        {
            throw new LandscapeInputException("the history and the evaluation budget must be positive", nameof(o));
        }
        if (!(0 < o.C1 && o.C1 < o.C2 && o.C2 < 1))
        {
            throw new LandscapeInputException("the line-search constants must satisfy 0 < c₁ < c₂ < 1", nameof(o));
        }
        return o;
    }
}
