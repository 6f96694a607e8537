using LossLandscape.Curvature;
using LossLandscape.Geometry;
using LossLandscape.Paths;
using LossLandscape.Problem;

namespace LossLandscape.Reports;

/// <summary>The sections <see cref="LandscapeReport.Compose"/> can write, in the order they appear on the page.</summary>
public enum ReportSection
{
    /// <summary>The certificate's table: on M?, rank of J, dim M, the inertia of ∇²L. About M.</summary>
    Certificate,

    /// <summary>All eigenvalues of ∇²L (dense), or 2·eig(JJᵀ) on M, against Proposition 2.3's ℓd. About M.</summary>
    ManifoldSpectrum,

    /// <summary>L and ‖∇L‖₂ at the point.</summary>
    LossAndGradient,

    /// <summary>The k largest eigenvalues of ∇²L by Lanczos, each with its residual ‖Hv − λv‖ (<c>spectrum --method lanczos</c>).</summary>
    TopEigenvalues,

    /// <summary>tr ∇²L by Hutch++ with its standard error (<c>trace</c>).</summary>
    Trace,

    /// <summary>The spectral density of ∇²L by stochastic Lanczos quadrature.</summary>
    Density,

    /// <summary>The singular values of J against the rank tolerance: rank J, which is the codimension of M at a regular point. About M.</summary>
    JacobianSingularValues,

    /// <summary>The 2D loss surface along two filter-normalized directions (Li et al. 2018; <c>slice --dims 2 --directions filter</c>).</summary>
    FilterSurface,

    /// <summary>The slice tangent against normal to M (drawn at a point of M only). About M.</summary>
    ManifoldSlice,

    /// <summary>The random walk on M (drawn at a point of M only, when it has steps). About M.</summary>
    ManifoldWalk,

    /// <summary>The training loss history (drawn when one is given).</summary>
    TrainingHistory,
}

/// <summary>
/// Which sections the report of a loss has (<see cref="LandscapeReport.Plan"/>), and, when the sections about M are left
/// out, the one sentence saying why.
/// </summary>
/// <param name="Loss">The loss the report is of.</param>
/// <param name="Sections">The sections that apply to the loss, in page order (a section drawn only under a condition, such
/// as <see cref="ReportSection.ManifoldWalk"/> at a point of M, is listed when the loss allows it).</param>
/// <param name="LeftOut">Why the sections about M are left out, in one sentence; null when they are not.</param>
public sealed record ReportPlan(LossFunction Loss, IReadOnlyList<ReportSection> Sections, string? LeftOut)
{
    /// <summary>Whether <paramref name="section"/> applies.</summary>
    public bool Includes(ReportSection section) => Sections.Contains(section);

    /// <summary>
    /// Whether <paramref name="section"/> is about the manifold of global minima M = H⁻¹(0) (the certificate, the spectrum
    /// against ℓd, rank J, the slice tangent and normal to M, the walk on M): what needs <see cref="LossFunction.IsResidualSum"/>.
    /// </summary>
    public static bool IsAboutManifold(ReportSection section) => section is ReportSection.Certificate or ReportSection.ManifoldSpectrum
        or ReportSection.JacobianSingularValues or ReportSection.ManifoldSlice or ReportSection.ManifoldWalk;
}

/// <summary>What <see cref="LandscapeReport.Compose"/> computed, besides the page.</summary>
/// <param name="Plan">The sections that applied to the loss.</param>
/// <param name="Certificate">The certificate, for a loss whose report is about M; null where it was left out.</param>
/// <param name="Curvature">The curvature at the point, for a loss whose report is not about M; null otherwise.</param>
public sealed record ReportResult(ReportPlan Plan, CertificateResult? Certificate, PointCurvature? Curvature);

/// <summary>The curvature sections of the report of a loss that is not a residual sum (PyHessian's quantities and Li et al.'s surface).</summary>
/// <param name="Loss">L at the point.</param>
/// <param name="GradientNorm">‖∇L‖₂ at the point.</param>
/// <param name="TopEigenvalues">The largest eigenvalues of ∇²L by Lanczos, with their residuals (<see cref="HessianSpectrum.Compute"/>).</param>
/// <param name="Trace">tr ∇²L by Hutch++ with its standard error (<see cref="TraceEstimate.Compute"/>).</param>
/// <param name="Density">The spectral density by SLQ (<see cref="HessianSpectrum.Compute"/>, <see cref="SpectrumResult.Slq"/>).</param>
/// <param name="Surface">L on the 2D grid along two filter-normalized directions (<see cref="LossSlice.Compute"/>).</param>
public sealed record PointCurvature(double Loss, double GradientNorm, SpectrumResult TopEigenvalues, TraceResult Trace, SpectrumResult Density, SliceResult Surface);
