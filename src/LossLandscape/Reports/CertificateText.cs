using System.Globalization;
using LossLandscape.Geometry;

namespace LossLandscape.Reports;

/// <summary>
/// The sentences that state a certificate's verdicts, shared by <c>landscape certify</c>, <c>landscape spectrum</c> and
/// the HTML report: wherever the certificate did not decide something (<see cref="RankDecision.Decided"/>,
/// <see cref="Inertia.Decided"/>), its line begins "not decided: " with the reason, and "dim M" is written only at a
/// point of M (elsewhere "n − rank J").
/// </summary>
public static class CertificateText
{
    /// <summary>
    /// The on-M test with both of its numbers and the comparison that decided it: "yes (max|H| = X ≤ tolerance Y)" or
    /// "no (max|H| = X &gt; tolerance Y)", Y the absolute tolerance <see cref="CertificateResult.OnManifoldTolerance"/>.
    /// </summary>
    /// <remarks>Stating the inequality that holds (not the condition tested) keeps "no" from reading as if the condition held.</remarks>
    public static string OnManifold(CertificateResult certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string x = Number(certificate.MaxAbsResidual), y = Number(certificate.OnManifoldTolerance);
        if (certificate.OnManifold)
        {
            return $"yes (max|H| = {x} ≤ tolerance {y})";
        }
        // A NaN residual fails the test without exceeding anything: say so rather than print "NaN > Y".
        return double.IsNaN(certificate.MaxAbsResidual) ? $"no (max|H| = NaN, not ≤ tolerance {y})" : $"no (max|H| = {x} > tolerance {y})";
    }

    /// <summary>rank J with ℓd, how the singular values were computed, and the decision: "R of ℓd = M (basis; decided: …)" or "(…; not decided: …)".</summary>
    public static string Rank(CertificateResult certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var j = certificate.Jacobian;
        return $"{j.Rank} of ℓd = {certificate.Constraints} ({j.Basis}; {j.Note})";
    }

    /// <summary>
    /// The label and value of n − rank J: "dim M = n − rank J" at a point of M, else "n − rank J" with the reason it is
    /// not dim M; "not decided" with the reason where the rank is not decided.
    /// </summary>
    public static (string Label, string Value) Dimension(CertificateResult certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        string k = certificate.KernelDimension.ToString(CultureInfo.InvariantCulture);
        bool decided = certificate.Jacobian.Decided;
        return certificate.ManifoldDimension is not null
            ? ("dim M = n − rank J", decided ? k : $"{k} (not decided: rank J is not decided)")
            : ("n − rank J", $"{k} (dim ker J; the point is not on M, so not the dimension of M{(decided ? "" : "; not decided: rank J is not decided")})");
    }

    /// <summary>Whether rank J = ℓd: "yes (rank J = ℓd)", "no (rank J &lt; ℓd)", or "not decided: rank J is not decided".</summary>
    public static string RegularPoint(CertificateResult certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        if (!certificate.Jacobian.Decided)
        {
            return "not decided: rank J is not decided";
        }
        return certificate.RegularPoint ? "yes (rank J = ℓd)" : "no (rank J < ℓd)";
    }

    /// <summary>
    /// The inertia of ∇²L: "P positive, Z zero, N negative (method, tolerance T)" where decided; where not, the
    /// <see cref="Inertia.Note"/> ("not decided: why") first, then what the route counted, so the counts never read as a verdict.
    /// </summary>
    public static string Inertia(Inertia inertia)
    {
        ArgumentNullException.ThrowIfNull(inertia);
        string counts = $"{inertia.Positive} positive, {inertia.Zero} zero, {inertia.Negative} negative";
        return inertia.Decided
            ? $"{counts} ({inertia.Method}, tolerance {Number(inertia.Tolerance)})"
            : $"{inertia.Note}; the {inertia.Method} route counted {counts} (tolerance {Number(inertia.Tolerance)})";
    }

    /// <summary>
    /// The certificate as rows of (quantity, value), the one table <c>landscape certify</c> prints and the report shows:
    /// data, n, L, max|H|, on M, rank J, σ(J) at the gap, n − rank J (dim M on M), regular point, inertia of ∇²L, how it
    /// was decided (where it was) and the nonzero eigenvalues.
    /// </summary>
    /// <param name="certificate">The certificate.</param>
    /// <param name="dataSource">The data's name (<see cref="Data.Dataset.Source"/>).</param>
    public static IReadOnlyList<(string Quantity, string Value)> Rows(CertificateResult certificate, string dataSource)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var c = certificate;
        var j = c.Jacobian;
        var h = c.Hessian;
        var rows = new List<(string, string)>
        {
            ("data", $"{dataSource}: d = {c.D}, ℓ = {c.Outputs}, ℓd = {c.Constraints}"),
            ("parameters n", c.N.ToString(CultureInfo.InvariantCulture)),
            ("loss L", Number(c.Loss)),
            ("max |H_k|", Number(c.MaxAbsResidual)),
            ("on M", OnManifold(c)),
            ("rank J", Rank(c)),
        };
        if (j.Exact && c.Triangular is { } t)
        {
            rows.Add(("σ(J) at the gap", j.SingularValues.Length == 0
                ? $"not computed (σ(J) is over the memory budget); rank proved structurally (min diagonal activation {Number(t.MinDiagonalActivation)})"
                : $"σmax {Number(j.SigmaMax)}; rank proved structurally (min diagonal activation {Number(t.MinDiagonalActivation)}), the computed σ near the bottom are below the tolerance {Number(j.Tolerance)}"));
        }
        else
        {
            rows.Add(("σ(J) at the gap", $"σmax {Number(j.SigmaMax)}, σ_rank {Number(j.SigmaAbove)} | σ_rank+1 {Number(j.SigmaBelow)}; σmax/σ_rank {Number(j.SigmaMax / Math.Max(j.SigmaAbove, double.Epsilon))}"));
        }
        rows.Add(Dimension(c));
        rows.Add(("regular point", RegularPoint(c)));
        rows.Add(("inertia of ∇²L", Inertia(h)));
        if (h.Decided)
        {
            rows.Add(("how", h.Note));
        }
        if (h.Eigenvalues.Length > 0)
        {
            rows.Add((h.Decided ? "nonzero eigenvalues" : "nonzero eigenvalues counted", $"{Number(h.Eigenvalues[0])} … {Number(h.Eigenvalues[^1])}"));
        }
        return rows;
    }

    /// <summary>One number as the certificate prints it: four significant digits, invariant culture.</summary>
    public static string Number(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
