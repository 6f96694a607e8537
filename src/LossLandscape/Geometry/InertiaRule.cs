using LossLandscape.Engine;
using LossLandscape.Geometry;

namespace LossLandscape.Geometry;

/// <summary>
/// The one rule that turns eigenvalues into the inertia of ∇²L (how many positive, zero and negative): one rule for the
/// dense route (all n eigenvalues) and one for the σ(J) route (on M with a = 2). Used by the certificate, the spectrum,
/// the report and the trained-spectra experiment.
/// </summary>
/// <remarks>
/// <para>
/// Dense route. LAPACK's symmetric eigensolver returns each eigenvalue to within a small multiple of ε‖A‖₂ (backward
/// stable; Golub &amp; Van Loan, Matrix Computations, 4th ed., §8.4); the resolution n·ε·‖∇²L‖ is that bound with the
/// conservative factor n. Off M the residual term R = ∇²L − 2JᵀJ = 2Σ H_k∇²f_k moves every eigenvalue by at most ‖R‖₂
/// from one of 2JᵀJ (Weyl), whose n − rank J zeros are the zeros of the paper; the tolerance is therefore
/// max(n·ε·‖∇²L‖, ‖R‖₂). Counts are reported as decided only when the gap is resolved: the smallest positive eigenvalue
/// and the curvature 2σ_rank(J)² that Theorem 2.1 / Proposition 2.3 predict are both ≥ <see cref="RankDecision.DecisionMargin"/>
/// times the tolerance. Otherwise, for a = 2 and a decided rank with 2σ_rank² &gt; margin·‖R‖₂, the counts come from
/// σ(J) (rank J positive, n − rank zero), the Weyl bound stating where the zeros lie; else the counts are undecided.
/// </para>
/// <para>
/// σ(J) route. On M with a = 2, ∇²L = 2JᵀJ: the positive eigenvalues are 2σᵢ(J)², rank J of them, and the other n − rank
/// are 0 (Cooper, Proposition 2.3). Decided when the rank of J is (<see cref="RankDecision.Decided"/>), the point is on M
/// and a = 2; or when the rank is <see cref="RankDecision.Exact"/> (proved structurally), on M with a = 2.
/// </para>
/// </remarks>
public static class InertiaRule
{
    /// <summary>The resolution of a dense symmetric eigen-decomposition of an n × n matrix of norm ‖A‖: n·ε·‖A‖.</summary>
    public static double Resolution(int n, double norm) => n * Float64.Epsilon * norm;

    /// <summary>#{λ &gt; τ}, #{|λ| ≤ τ}, #{λ &lt; −τ}.</summary>
    public static (int Positive, int Zero, int Negative) Count(IEnumerable<double> eigenvalues, double tolerance)
    {
        ArgumentNullException.ThrowIfNull(eigenvalues);
        int positive = 0, zero = 0, negative = 0;
        foreach (var v in eigenvalues)
        {
            if (v > tolerance)
            {
                positive++;
            }
            else if (v < -tolerance)
            {
                negative++;
            }
            else
            {
                zero++;
            }
        }
        return (positive, zero, negative);
    }

    /// <summary>The dense route: the inertia from all n eigenvalues of ∇²L (any order).</summary>
    /// <param name="eigenvalues">All n eigenvalues of ∇²L.</param>
    /// <param name="residualTermNorm">‖∇²L − 2JᵀJ‖₂ for the squared loss (a = 2), else null.</param>
    /// <param name="rank">The rank decision of J at the point.</param>
    public static Inertia Dense(IReadOnlyList<double> eigenvalues, double? residualTermNorm, RankDecision rank)
    {
        ArgumentNullException.ThrowIfNull(eigenvalues);
        ArgumentNullException.ThrowIfNull(rank);
        int n = eigenvalues.Count;
        var lambda = eigenvalues.OrderByDescending(v => v).ToArray();
        double norm = lambda.Select(Math.Abs).DefaultIfEmpty(0).Max();
        double resolution = Resolution(n, norm);
        double tolerance = Math.Max(resolution, residualTermNorm ?? 0);
        var (positive, _, negative) = Count(lambda, tolerance);
        var nonzero = lambda.Where(v => Math.Abs(v) > tolerance).ToArray();
        double smallestPositive = lambda.Where(v => v > tolerance).DefaultIfEmpty(0).Min();
        bool resolved = positive == 0 || smallestPositive >= RankDecision.DecisionMargin * tolerance;
        // The curvature the theorem predicts at the smallest constraint direction: 2σ_rank(J)².
        double predicted = 2 * rank.SigmaAbove * rank.SigmaAbove;
        if (resolved && (predicted >= RankDecision.DecisionMargin * tolerance || rank.Rank == 0))
        {
            return new Inertia("dense", positive, n - positive - negative, negative, tolerance, nonzero, true,
                $"all n eigenvalues of ∇²L; tolerance max(n·ε·‖∇²L‖, ‖∇²L − 2JᵀJ‖₂) = {tolerance:G3}", residualTermNorm, lambda);
        }
        if (rank.Decided && residualTermNorm is { } r && predicted > RankDecision.DecisionMargin * r)
        {
            // Weyl: the eigenvalues of ∇²L lie within r of those of 2JᵀJ, whose nonzero ones are 2σᵢ² > 10r.
            var fromJ = SigmaRoute(rank);
            return new Inertia("dense", rank.Rank, n - rank.Rank, 0, r, fromJ, true,
                $"dense eigenvalues resolve only to {resolution:G3} but 2σmin(J)² = {predicted:G3}: counts decided from σ(J) (2JᵀJ) with the Weyl bound ‖∇²L − 2JᵀJ‖₂ = {r:G3}; the n − rank zero eigenvalues lie in [−{r:G3}, {r:G3}]", residualTermNorm, lambda);
        }
        return new Inertia("dense", positive, n - positive - negative, negative, tolerance, nonzero, false,
            $"not decided: the smallest curvature 2σmin(J)² = {predicted:G3} is not resolved above the tolerance {tolerance:G3}", residualTermNorm, lambda);
    }

    /// <summary>
    /// The σ(J) route: on M with a = 2, rank J positive eigenvalues 2σᵢ² and n − rank zeros; undecided (with the reason)
    /// when a ≠ 2, the point is off M, or the rank gap of J is not resolved.
    /// </summary>
    /// <param name="rank">The rank decision of J.</param>
    /// <param name="n">The number of parameters.</param>
    /// <param name="squaredLoss">Whether a = 2.</param>
    /// <param name="onManifold">Whether the point is on M (<see cref="OnManifoldTest"/>).</param>
    public static Inertia FromJacobian(RankDecision rank, int n, bool squaredLoss, bool onManifold)
    {
        ArgumentNullException.ThrowIfNull(rank);
        var eigen = SigmaRoute(rank);
        double tolerance = 2 * rank.Tolerance * rank.Tolerance;
        if (!squaredLoss)
        {
            return new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, false, "not decided: ∇²L = 2JᵀJ holds for the squared loss (a = 2) only", null);
        }
        if (!onManifold)
        {
            return new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, false, "not decided: the point is not on M, where ∇²L = 2JᵀJ; use the dense method", null);
        }
        if (rank.Exact)
        {
            // The counts rest on the proof; of the computed 2σᵢ² only those above the tolerance are resolved and listed.
            var resolved = eigen.Where(v => v > tolerance).ToArray();
            string values = rank.SingularValues.Length == 0
                ? "σ(J) was not computed (over the memory budget), so no eigenvalues are listed"
                : $"{resolved.Length} of the positive ones are resolved numerically and listed, the other {rank.Rank - resolved.Length} lie below the tolerance";
            return new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, resolved, true,
                $"on M, ∇²L = 2JᵀJ: rank J = {rank.Rank} proved exactly ({rank.Basis}), so {rank.Rank} positive eigenvalues and n − rank zeros; {values}", null);
        }
        string basis = rank.Basis == "svd of J" ? "σ(J) from the SVD of J" : "σ(J) = √eig(JJᵀ)";
        return rank.Decided
            ? new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, true, $"on M, ∇²L = 2JᵀJ: positive eigenvalues 2σᵢ² from {basis}, the other n − rank are 0", null)
            : new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, false, $"not decided: the rank gap of J is not resolved ({basis}, tolerance {rank.Tolerance:G3})", null);
    }

    /// <summary>2σᵢ² for the σᵢ counted in the rank, descending: the nonzero eigenvalues of 2JᵀJ.</summary>
    public static double[] SigmaRoute(RankDecision rank)
    {
        ArgumentNullException.ThrowIfNull(rank);
        return rank.SingularValues.Take(rank.Rank).Select(s => 2 * s * s).ToArray();
    }
}
