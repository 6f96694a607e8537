using static TorchSharp.torch;

namespace LossLandscape.Training;

/// <summary>Which line search <see cref="Lbfgs"/> uses.</summary>
public enum LineSearchKind
{
    /// <summary>
    /// Strong Wolfe conditions φ(α) ≤ φ(0) + c₁αφ′(0) and |φ′(α)| ≤ c₂|φ′(0)|, by bracketing and zoom with safeguarded cubic
    /// interpolation (Nocedal &amp; Wright, Numerical Optimization, 2nd ed., Algorithms 3.5 and 3.6, eq. 3.59).
    /// </summary>
    StrongWolfe,

    /// <summary>Backtracking: halve α until φ(α) ≤ φ(0) + c₁αφ′(0) (Nocedal &amp; Wright, Algorithm 3.1, ρ = 1/2).</summary>
    Armijo,
}

/// <summary>A one-dimensional search along a descent direction d: φ(α) = L(p + αd), φ′(α) = ∇L(p + αd)ᵀd.</summary>
internal static class LineSearch
{
    /// <summary>One trial point: α, φ(α), φ′(α) and ∇L there (owned by the caller).</summary>
    public sealed record Trial(double Alpha, double Value, double Slope, Tensor Gradient);

    /// <summary>
    /// Searches along d from φ(0) = <paramref name="f0"/>, φ′(0) = <paramref name="slope0"/> &lt; 0, starting at
    /// <paramref name="alpha0"/>. Returns the accepted trial, or null if none satisfied the conditions within the budget.
    /// <paramref name="evaluate"/> moves the model to p + αd and returns (φ(α), ∇L).
    /// </summary>
    public static Trial? Search(LineSearchKind kind, Func<double, (double Value, Tensor Gradient)> evaluate, Tensor direction,
        double f0, double slope0, double alpha0, double c1, double c2, int maxEvaluations, out int evaluations)
    {
        evaluations = 0;
        int used = 0;
        Trial Eval(double alpha)
        {
            used++;
            var (value, gradient) = evaluate(alpha);
            return new Trial(alpha, value, gradient.dot(direction).item<double>(), gradient);
        }
        bool Armijo(Trial t) => t.Value <= f0 + c1 * t.Alpha * slope0; // false for NaN
        try
        {
            if (kind == LineSearchKind.Armijo)
            {
                double alpha = alpha0;
                while (used < maxEvaluations)
                {
                    var t = Eval(alpha);
                    if (Armijo(t))
                    {
                        return t;
                    }
                    alpha /= 2;
                }
                return null;
            }
            // Algorithm 3.5: bracket a step satisfying the strong Wolfe conditions, then zoom (Algorithm 3.6).
            var previous = new Trial(0, f0, slope0, empty(0)) /* the gradient at α = 0 is not needed */;
            double current = alpha0;
            for (int i = 1; used < maxEvaluations; i++)
            {
                var t = Eval(current);
                if (!Armijo(t) || (i > 1 && t.Value >= previous.Value))
                {
                    return Zoom(previous, t);
                }
                if (Math.Abs(t.Slope) <= -c2 * slope0)
                {
                    return t;
                }
                if (t.Slope >= 0)
                {
                    return Zoom(t, previous);
                }
                previous = t;
                current *= 2; // extrapolate: the minimizer lies further along d
            }
            return null;
        }
        finally
        {
            evaluations = used;
        }

        Trial? Zoom(Trial lo, Trial hi)
        {
            while (used < maxEvaluations)
            {
                double alpha = CubicMinimizer(lo, hi);
                var t = Eval(alpha);
                if (!Armijo(t) || t.Value >= lo.Value)
                {
                    hi = t;
                    continue;
                }
                if (Math.Abs(t.Slope) <= -c2 * slope0)
                {
                    return t;
                }
                if (t.Slope * (hi.Alpha - lo.Alpha) >= 0)
                {
                    hi = lo;
                }
                lo = t;
            }
            // Budget spent: the best Armijo point found, if any (lo satisfies sufficient decrease when α > 0).
            return lo.Alpha > 0 ? lo : null;
        }
    }

    /// <summary>
    /// The minimizer of the cubic interpolating φ and φ′ at both ends (Nocedal &amp; Wright eq. 3.59), kept inside the
    /// middle 80% of the bracket; bisection when the cubic has no real minimizer or a value is not finite.
    /// </summary>
    internal static double CubicMinimizer(Trial a, Trial b)
    {
        double lo = Math.Min(a.Alpha, b.Alpha), hi = Math.Max(a.Alpha, b.Alpha), width = hi - lo;
        double d1 = a.Slope + b.Slope - 3 * (a.Value - b.Value) / (a.Alpha - b.Alpha);
        double disc = d1 * d1 - a.Slope * b.Slope;
        double alpha = double.NaN;
        if (disc >= 0 && double.IsFinite(disc))
        {
            double d2 = Math.Sign(b.Alpha - a.Alpha) * Math.Sqrt(disc);
            alpha = b.Alpha - (b.Alpha - a.Alpha) * ((b.Slope + d2 - d1) / (b.Slope - a.Slope + 2 * d2));
        }
        return double.IsFinite(alpha) ? Math.Clamp(alpha, lo + 0.1 * width, hi - 0.1 * width) : (lo + hi) / 2;
    }
}
