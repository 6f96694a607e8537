using System.Text.Json.Serialization;

namespace LossLandscape.Geometry;

/// <summary>
/// A numerical rank decision: the rank, the tolerance used, and the singular values on both sides of
/// the gap it decided across.
/// </summary>
/// <param name="Rank">#{σᵢ &gt; Tolerance}.</param>
/// <param name="Tolerance">The threshold: max(Resolution, RelativeTolerance·σmax).</param>
/// <param name="Resolution">The absolute accuracy of the singular values as computed (what no decision may rest on).</param>
/// <param name="SingularValues">All computed singular values, descending.</param>
/// <param name="Constraints">ℓd, the number of rows of J.</param>
/// <param name="Basis">How the singular values were computed (e.g. "svd of J", "eig of JJᵀ"), or how the rank was proved (<see cref="TriangularActivationCertificate.Basis"/>).</param>
/// <param name="Exact">
/// The rank is proved structurally, not read off the singular values (<see cref="TriangularActivationCertificate"/>); the
/// singular values are then those computed, reported for information, and the smallest may lie below their resolution.
/// </param>
/// <remarks>In JSON: the rank, its tolerance and resolution, σmax and the singular values at the cut, whether it is decided and why; not all the singular values.</remarks>
public sealed record RankDecision(int Rank, double Tolerance, double Resolution, [property: JsonIgnore] double[] SingularValues, [property: JsonIgnore] int Constraints, string Basis,
    [property: JsonIgnore] bool Exact = false)
{
    /// <summary>
    /// The margin a decision needs: the singular values next to the cut must be a factor 10 away from
    /// the tolerance on each side, or the rank is reported as undecided.
    /// </summary>
    public const double DecisionMargin = 10.0;

    /// <summary>
    /// A lower bound on σmin(J) proved without computing the singular values (<see cref="GramCholesky"/>): set with
    /// <see cref="Rank"/> = ℓd and no <see cref="SingularValues"/>; null on the other routes.
    /// </summary>
    [JsonIgnore]
    public double? ProvenSigmaMin { get; init; }

    /// <summary>With <see cref="ProvenSigmaMin"/>: an upper estimate of σmax (Lanczos on JJᵀ, its Ritz value plus residual); else null.</summary>
    [JsonIgnore]
    public double? SigmaMaxEstimate { get; init; }

    /// <summary>σmax (on the route of <see cref="ProvenSigmaMin"/>, its estimate).</summary>
    public double SigmaMax => SingularValues.Length > 0 ? SingularValues[0] : SigmaMaxEstimate ?? 0.0;

    /// <summary>
    /// The smallest of the first ℓd singular values (0 when there are fewer); on the route of <see cref="ProvenSigmaMin"/>,
    /// that proven lower bound.
    /// </summary>
    public double SigmaMin => SingularValues.Length >= Constraints && Constraints > 0 ? SingularValues[Constraints - 1] : ProvenSigmaMin ?? 0.0;

    /// <summary>The singular value after the first ℓd, or 0.</summary>
    public double SigmaNext => SingularValues.Length > Constraints ? SingularValues[Constraints] : 0.0;

    /// <summary>
    /// The smallest singular value counted in the rank (σ_rank), or 0 when the rank is 0 or it was not computed (an
    /// <see cref="Exact"/> rank); on the route of <see cref="ProvenSigmaMin"/>, that proven lower bound.
    /// </summary>
    public double SigmaAbove => Rank > 0 && Rank <= SingularValues.Length ? SingularValues[Rank - 1] : ProvenSigmaMin ?? 0.0;

    /// <summary>The largest singular value not counted (σ_{rank+1}), or 0 when every one counts.</summary>
    public double SigmaBelow => Rank < SingularValues.Length ? SingularValues[Rank] : 0.0;

    /// <summary>σ_rank / σ_{rank+1} (∞ when nothing lies below).</summary>
    [JsonIgnore]
    public double Gap => SigmaBelow > 0 ? SigmaAbove / SigmaBelow : double.PositiveInfinity;

    /// <summary>
    /// The decision is sound: the rank is <see cref="Exact"/>, or σ_rank ≥ 10·tolerance and σ_{rank+1} ≤ tolerance/10
    /// (or absent), and σ_rank is above the resolution by the same margin.
    /// </summary>
    public bool Decided => Exact || (AboveResolved && BelowResolved);

    /// <summary>
    /// Why the rank is or is not decided, in words, with the numbers compared: "decided: …" or "not decided: …" naming
    /// the side of the gap within <see cref="DecisionMargin"/> of the tolerance. The one sentence <c>certify</c>'s table,
    /// the report and the JSON give for the rank decision.
    /// </summary>
    public string Note
    {
        get
        {
            static string F(double v) => v.ToString("G3", System.Globalization.CultureInfo.InvariantCulture);
            if (Exact)
            {
                return $"decided: rank proved exactly ({Basis})";
            }
            string above = Rank == 0 ? "no singular value above the tolerance" : $"σ_rank = {F(SigmaAbove)}";
            string below = Rank < SingularValues.Length ? $"σ_rank+1 = {F(SigmaBelow)}" : "no singular value below it";
            if (Decided)
            {
                return $"decided: {above}{(Rank == 0 ? "" : " ≥ 10·tolerance")}, {below}{(Rank < SingularValues.Length ? " ≤ tolerance/10" : "")} (tolerance {F(Tolerance)})";
            }
            var reasons = new List<string>();
            if (!AboveResolved)
            {
                reasons.Add($"σ_rank = {F(SigmaAbove)} is less than 10·tolerance");
            }
            if (!BelowResolved)
            {
                reasons.Add($"σ_rank+1 = {F(SigmaBelow)} is more than tolerance/10");
            }
            return $"not decided: {string.Join(" and ", reasons)} (tolerance {F(Tolerance)}), so the gap the rank is cut at is not resolved";
        }
    }

    /// <summary>σ_rank is at least <see cref="DecisionMargin"/> times the tolerance (or the rank is 0).</summary>
    private bool AboveResolved => Rank == 0 || SigmaAbove >= DecisionMargin * Tolerance;

    /// <summary>σ_rank+1 is at most the tolerance over <see cref="DecisionMargin"/> (or absent).</summary>
    private bool BelowResolved => SigmaBelow <= Tolerance / DecisionMargin;

    /// <summary>Full row rank: Rank = ℓd (a regular point of H).</summary>
    [JsonIgnore]
    public bool FullRowRank => Rank == Constraints;

    /// <summary>
    /// Decides the rank of singular values <paramref name="singularValues"/> (any order) known to absolute
    /// accuracy <paramref name="resolution"/>; the tolerance is max(resolution, relativeTolerance·σmax).
    /// </summary>
    public static RankDecision FromSingularValues(IEnumerable<double> singularValues, int constraints, double resolution, string basis, double relativeTolerance = 0)
    {
        var s = singularValues.Select(v => Math.Max(v, 0.0)).OrderByDescending(v => v).ToArray();
        double max = s.Length > 0 ? s[0] : 0.0;
        double tol = Math.Max(resolution, relativeTolerance * max);
        if (tol == 0)
        {
            tol = double.Epsilon;
        }
        int rank = s.Count(v => v > tol);
        return new RankDecision(rank, tol, resolution, s, constraints, basis);
    }
}
