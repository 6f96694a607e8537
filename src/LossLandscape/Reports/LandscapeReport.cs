using LossLandscape.Operators;
using LossLandscape.Problem;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Reports;

/// <summary>Settings of <see cref="LandscapeReport.Build"/>.</summary>
/// <param name="SliceGrid">Points per axis of the tangent-against-normal slice.</param>
/// <param name="SliceRange">Range of the slice, in units of the (unit) directions.</param>
/// <param name="WalkSteps">Steps of the walk on M (0: no walk).</param>
/// <param name="WalkStepSize">Length of each walk step.</param>
/// <param name="Seed">Seed of the random draws.</param>
/// <remarks>
/// The spectrum's route (all n eigenvalues of the dense ∇²L, or 2·eig(JJᵀ) on M) is the certificate's
/// <see cref="InertiaMethod.Auto"/> choice (<see cref="Certificate.ChooseMethod"/>), not a limit of the report's own.
/// </remarks>
public sealed record ReportOptions(int SliceGrid = 31, double SliceRange = 1.0, int WalkSteps = 10, double WalkStepSize = 0.1, int Seed = 0);

/// <summary>
/// The figures and the certificate of one point, assembled into an <see cref="HtmlReport"/>: the
/// certificate table, the Hessian spectrum (symmetric log) with the ℓd positive eigenvalues and the
/// gap to zero, the SLQ density, the singular values of J against the rank tolerance, a slice tangent
/// against normal to M, and the walk.
/// </summary>
public static class LandscapeReport
{
    /// <summary>Computes everything at <paramref name="map"/>'s point and appends it to <paramref name="report"/>.</summary>
    /// <param name="report">The page to append to.</param>
    /// <param name="map">The model and data.</param>
    /// <param name="options">Slice, walk and seed.</param>
    /// <param name="lossHistory">A training loss history to plot, if any: the losses, and the step of each (null: every step).</param>
    /// <param name="limits">
    /// The budget of every dense matrix, Krylov basis, factorization and grid of the report; the token, checked at every
    /// stage (cancelling throws <see cref="OperationCanceledException"/>: half a report is none); the stages reported: the
    /// certificate's (with the dense Hessian's columns), then the density, the slice and the walk.
    /// </param>
    public static CertificateResult Build(HtmlReport report, IResidualProblem map, ReportOptions options, TrainingLosses? lossHistory = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var cert = Certificate.Compute(map, new CertificateOptions(InertiaMethod.Auto), limits.Within(0, 0.7, "certificate:"));
        var j = cert.Jacobian;
        var h = cert.Hessian;
        report.Heading("Certificate");
        // The same rows as certify's table (CertificateText.Rows): what was not decided says so, with the reason.
        report.Table(["quantity", "value"], CertificateText.Rows(cert, map.Data.Source).Select(r => (IReadOnlyList<string>)[r.Quantity, r.Value]));

        if (!cert.OnManifold)
        {
            report.Paragraph($"This point is not on M: max|H| = {F(cert.MaxAbsResidual)} > tolerance {F(cert.OnManifoldTolerance)}. " +
                "Proposition 2.3 (ℓd positive eigenvalues, n − ℓd zeros) describes ∇²L on M only, and the slice tangent and normal to M and the walk on M are left out.");
        }

        report.Heading("Spectrum");
        using (var scope = NewDisposeScope())
        {
            if (h.AllEigenvalues is { } all)
            {
                report.Figure(Plots.Svg(Plots.Spectrum(all, h.Tolerance, cert.Constraints, "Hessian eigenvalues (all n, dense)")), SpectrumCaption(cert, all.Length));
            }
            else
            {
                var values = h.Eigenvalues.Concat(Enumerable.Repeat(0.0, Math.Min(cert.N - h.Eigenvalues.Length, 200))).ToArray();
                report.Figure(Plots.Svg(Plots.Spectrum(values, h.Tolerance, cert.Constraints, cert.OnManifold ? "Hessian eigenvalues (2·eig(JJᵀ) on M)" : "2σᵢ(J)², the Gauss–Newton part only (not on M)")),
                    cert.OnManifold
                        ? $"Proposition 2.3 at a point of M, where ∇²L = 2JᵀJ: the {h.Eigenvalues.Length} nonzero eigenvalues 2σᵢ(J)² (ℓd = {cert.Constraints}), then (200 of) the n − rank = {cert.N - h.Eigenvalues.Length} zeros.{(h.Decided ? "" : $" The inertia of ∇²L is {h.Note}.")}"
                        : $"This point is not on M, so ∇²L = 2JᵀJ + 2Σ H_k∇²f_k differs from 2JᵀJ: shown are the {h.Eigenvalues.Length} eigenvalues 2σᵢ(J)² of the Gauss–Newton part and (200 of) its n − rank zeros, not the spectrum of ∇²L (n = {cert.N} is above the dense limit {Certificate.DenseLimit(limits, cert.Constraints)}).");
            }
            limits.Checkpoint("spectral density (SLQ)", 0.7);
            var slq = StochasticLanczosQuadrature.Estimate(new HessianOperator(map), new SlqOptions(Steps: Math.Min(90, map.ParameterCount), Seed: options.Seed), limits.WithoutProgress());
            report.Figure(Plots.Svg(Plots.Density(slq.Grid, slq.Density, "Spectral density (SLQ)")),
                $"Stochastic Lanczos quadrature, {slq.Rules.Count} probes × {slq.Rules[0].Steps} steps, Gaussian broadening σ² = 1e−5 of the normalized spectrum (Ghorbani et al. 2019); {slq.Applications} Hessian-vector products.");
            report.Figure(Plots.Svg(Plots.SingularValues(j.SingularValues, j.Tolerance, j.Rank, "Singular values of J")),
                $"σᵢ(J) ({j.Basis}) and the rank tolerance {F(j.Tolerance)}; rank {j.Rank}.");
        }

        if (cert.OnManifold)
        {
            report.Heading("Flat and curved directions of M");
            limits.Checkpoint("slice tangent against normal", 0.8);
            var slice = LossSlice.Compute(map, new SliceOptions([SliceDirection.Tangent, SliceDirection.Normal], options.SliceGrid, options.SliceRange, options.Seed), limits.WithoutProgress());
            report.Figure(Plots.Svg(Plots.Slice(slice, "Loss: tangent (x) against normal (y) to M")),
                "L(p + α t + β ν) with t a unit tangent to M (ker J) and ν a unit normal (row space of J): flat along the tangent (L = O(α⁴)), a parabola along the normal.");
            if (options.WalkSteps > 0)
            {
                limits.Checkpoint("walk on M", 0.9);
                var start = map.GetPoint();
                var walk = ManifoldWalk.Run(map, new WalkOptions(options.WalkSteps, options.WalkStepSize, options.Seed, OnManifoldTest.Threshold(map, 1e-10)), limits.WithoutProgress());
                map.SetPoint(start);
                start.Dispose();
                limits.ThrowIfCancellationRequested(); // a walk cut short is no figure of the report
                report.Figure(Plots.Svg(Plots.Walk(walk.Steps, "Random walk on M")),
                    $"{options.WalkSteps} tangent steps of length {F(options.WalkStepSize)}, each retracted onto M by Gauss–Newton: the distance grows while max|H| stays at the retraction tolerance ({walk.Status}).");
            }
        }
        if (lossHistory is { Losses.Count: > 0 } history)
        {
            report.Heading("Training");
            report.Figure(Plots.Svg(Plots.LossHistory(history.Losses, "Training loss", history.Steps)), $"{history.Losses.Count} recorded losses.");
        }
        limits.Checkpoint("done", 1);
        return cert;
    }

    /// <summary>
    /// The section "Paths between minima" from a path file (<see cref="PathFile"/>, written by <c>landscape connect --out</c>):
    /// L and max|H| along t for every method the file holds, and their table. A file without profiles is measured at its
    /// vertices on <paramref name="map"/>'s data (the model is restored afterwards).
    /// </summary>
    public static void AddPaths(HtmlReport report, PathDocument path, IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(map);
        if (path.Network.ParameterCount != map.ParameterCount)
        {
            throw new LandscapeInputException($"the path file's network has n = {path.Network.ParameterCount}, the model {map.ParameterCount}");
        }
        string F(double v) => double.IsFinite(v) ? v.ToString("G4", CultureInfo.InvariantCulture) : "—";
        var profiles = path.Profiles;
        if (profiles.Count == 0)
        {
            var saved = map.GetPoint();
            try
            {
                profiles = [new PathProfile(path.Method, path.Vertices.Select(v =>
                {
                    var (loss, max) = PathEvaluation.Measure(map, v.Parameters);
                    return new PathPoint(v.T, loss, max, true);
                }).ToList())];
            }
            finally
            {
                map.SetPoint(saved);
                saved.Dispose();
            }
        }
        report.Heading("Paths between minima");
        report.Figure(Plots.Svg(Plots.PathProfiles(profiles, "Loss along the paths from A (t = 0) to B (t = 1)")),
            $"L at the measured points of each path (the evenly spaced t and 9 points on every segment between vertices), log scale; the dots mark where each path starts and ends. The file holds the vertices of the {path.Method} path ({path.Vertices.Count} vertices, {path.Interpolation.ToString().ToLowerInvariant()} between them).");
        report.Figure(Plots.Svg(Plots.PathProfiles(profiles, "max |H| along the paths", residual: true)),
            "max_k |H_k| at the same points: a path inside M keeps it at the on-M tolerance; the peers' paths leave M between the endpoints.");
        if (path.Methods.Count > 0)
        {
            report.Table(["method", "max L", "barrier", "max|H|", "length / ‖A − B‖", "vertices", "forward", "gradient", "Jacobian", "seconds", "status", "certified"],
                path.Methods.Select(m => (IReadOnlyList<string>)
                [
                    m.Method + (m.Aligned ? " (aligned)" : ""), F(m.MaxLoss), F(m.Barrier), F(m.MaxAbsResidual), F(m.LengthRatio), m.Vertices.ToString(CultureInfo.InvariantCulture),
                    m.Evaluations.Forward.ToString(CultureInfo.InvariantCulture), m.Evaluations.Gradient.ToString(CultureInfo.InvariantCulture), m.Evaluations.Jacobian.ToString(CultureInfo.InvariantCulture),
                    F(m.Seconds), m.Status, m.Method == "manifold" ? (m.Certified ? "yes" : "no") : "—",
                ]));
            report.Paragraph("Barrier: max L − ½(L(A) + L(B)) (Ainsworth et al. 2022). A manifold path is certified when every vertex is a regular point " +
                "(rank J = ℓd decided across its gap) and every vertex and the 9 measured points of each segment (the chord projected onto M) have max|H| within the on-M tolerance. " +
                "It does not prove the points between samples, nor that the straight chord between two vertices stays on M.");
        }
    }

    /// <summary>
    /// The caption of the dense spectrum, true to the point: at a point of M what Proposition 2.3 predicts there (ℓd
    /// positive, a gap, n − ℓd zeros); elsewhere that the point is not on M and the counts the certificate found.
    /// </summary>
    internal static string SpectrumCaption(CertificateResult cert, int count)
    {
        ArgumentNullException.ThrowIfNull(cert);
        string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var h = cert.Hessian;
        return cert.OnManifold
            ? $"All {count} eigenvalues of ∇²L, descending, symmetric log axis. Proposition 2.3 at a point of M: ℓd = {cert.Constraints} positive, then a gap down to the n − ℓd = {cert.N - cert.Constraints} at zero (|λ| ≤ {F(h.Tolerance)})."
            : $"All {count} eigenvalues of ∇²L, descending, symmetric log axis; inertia: {CertificateText.Inertia(h)}. This point is not on M (max|H| = {F(cert.MaxAbsResidual)} > tolerance {F(cert.OnManifoldTolerance)}), so Proposition 2.3 does not describe it.";
    }
}

/// <summary>A training loss history for the report (<c>train --json</c>'s <c>lossHistory</c> and <c>lossSteps</c>).</summary>
/// <param name="Losses">The recorded losses L.</param>
/// <param name="Steps">The step after which each was evaluated (L every K steps); null: after every step, 0, 1, 2, ….</param>
public sealed record TrainingLosses(IReadOnlyList<double> Losses, IReadOnlyList<int>? Steps = null);
