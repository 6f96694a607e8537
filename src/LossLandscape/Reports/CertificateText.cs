using System.Globalization;
using LossLandscape.Geometry;

namespace LossLandscape.Reports;

/// <summary>The sentences that state a certificate's verdicts, shared by <c>landscape certify</c> and the HTML report.</summary>
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

    /// <summary>One number as the certificate prints it: four significant digits, invariant culture.</summary>
    public static string Number(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
