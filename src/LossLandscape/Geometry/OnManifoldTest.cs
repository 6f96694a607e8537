using System.Text.Json.Serialization;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// Whether a point lies on M = H⁻¹(0): max_k |H_k| ≤ tol·max(1, max|y|). The one on-M rule of the library, used by the
/// certificate, the spectrum and the report.
/// </summary>
/// <param name="MaxAbsResidual">max_k |H_k| = max|f(xᵢ) − yᵢ| at the point.</param>
/// <param name="Tolerance">The absolute threshold, relative tolerance × max(1, max|y|) (in JSON, <c>onManifoldTolerance</c>).</param>
/// <param name="Holds">MaxAbsResidual ≤ Tolerance (in JSON, <c>onManifold</c>).</param>
public sealed record OnManifoldTest(double MaxAbsResidual, [property: JsonPropertyName("onManifoldTolerance")] double Tolerance, [property: JsonPropertyName("onManifold")] bool Holds)
{
    /// <summary>
    /// The default relative tolerance: 1e−8. The residual of a point reached by Gauss–Newton or built by Lemma 3.3 is at
    /// the float64 floor, 1e−12 and below (ℓd·ε·amplification); 1e−8 sits far above that floor and far below any residual
    /// that changes the curvature visibly (∇²L − 2JᵀJ = 2Σ H_k∇²f_k scales with max|H|).
    /// </summary>
    public const double DefaultRelativeTolerance = 1e-8;

    /// <summary>The test at <paramref name="map"/>'s point, with tolerance <paramref name="relativeTolerance"/>·max(1, max|y|).</summary>
    public static OnManifoldTest At(IResidualProblem map, double relativeTolerance = DefaultRelativeTolerance)
    {
        ArgumentNullException.ThrowIfNull(map);
        double maxAbs = map.MaxAbsResidual();
        double tolerance = Threshold(map, relativeTolerance);
        return new OnManifoldTest(maxAbs, tolerance, maxAbs <= tolerance);
    }

    /// <summary>
    /// The absolute on-M threshold for a relative tolerance: <paramref name="relativeTolerance"/>·max(1, max|y|), the scale of
    /// the targets (at least 1, so that targets near 0 do not make the test stricter than float64 can meet). The one place
    /// the threshold is computed: the certificate, the spectrum, the walk, the paths, the report and the CLI read it here.
    /// </summary>
    public static double Threshold(IResidualProblem problem, double relativeTolerance = DefaultRelativeTolerance)
    {
        ArgumentNullException.ThrowIfNull(problem);
        return Threshold(problem.MaxAbsTarget, relativeTolerance);
    }

    /// <summary>The threshold of <see cref="Threshold(IResidualProblem, double)"/> for targets whose largest |y| is <paramref name="maxAbsTarget"/>.</summary>
    public static double Threshold(double maxAbsTarget, double relativeTolerance) => relativeTolerance * Math.Max(1.0, maxAbsTarget);
}
