using LossLandscape.Operators;
using LossLandscape.Problem;
using System.Globalization;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Reports;

/// <summary>Settings of <see cref="LandscapeReport.Compose"/> and <see cref="LandscapeReport.Build"/>.</summary>
/// <param name="SliceGrid">Points per axis of the 2D slice: tangent against normal to M, or the filter-normalized surface.</param>
/// <param name="SliceRange">Range of the slice, in units of the directions (unit, or filter-normalized).</param>
/// <param name="WalkSteps">Steps of the walk on M (0: no walk).</param>
/// <param name="WalkStepSize">Length of each walk step.</param>
/// <param name="Seed">Seed of the random draws.</param>
/// <param name="TopEigenvalues">
/// How many of the largest eigenvalues of ∇²L Lanczos finds (at most n); default 10, <c>spectrum</c>'s
/// (<see cref="SpectrumOptions.K"/>). For a loss that is not a residual sum.
/// </param>
/// <param name="LanczosSteps">
/// The most Lanczos steps for the top eigenvalues; default null: min(n, max(100, 10k)) (<see cref="SpectrumOptions.MaxIterations"/>). For a loss
/// that is not a residual sum.
/// </param>
/// <param name="TraceProbes">
/// Hutch++'s budget of Hessian-vector products for tr ∇²L (at least 3); default 99, <c>trace</c>'s
/// (<see cref="TraceEstimate.HutchPlusPlusProbes"/>). For a loss that is not a residual sum.
/// </param>
/// <param name="SlqSteps">Lanczos steps per probe of the spectral density (at most n are taken); default 90, Ghorbani et al. 2019 (<see cref="SlqOptions.Steps"/>).</param>
/// <param name="SlqProbes">Probe vectors of the spectral density; default 10, Ghorbani et al. 2019 (<see cref="SlqOptions.ProbeCount"/>).</param>
/// <remarks>
/// The spectrum's route (all n eigenvalues of the dense ∇²L, or 2·eig(JJᵀ) on M) is the certificate's
/// <see cref="InertiaMethod.Auto"/> choice (<see cref="Certificate.ChooseMethod"/>), not a limit of the report's own.
/// </remarks>
public sealed record ReportOptions(int SliceGrid = 31, double SliceRange = 1.0, int WalkSteps = 10, double WalkStepSize = 0.1, int Seed = 0,
    int TopEigenvalues = 10, int? LanczosSteps = null, int TraceProbes = TraceEstimate.HutchPlusPlusProbes, int SlqSteps = 90, int SlqProbes = 10);

/// <summary>
/// The figures of one point, assembled into an <see cref="HtmlReport"/>. Which sections apply is decided by the loss
/// (<see cref="Plan"/>, written by <see cref="Compose"/>): for the paper's L = Σ|H_k|^a (<see cref="Build"/>) the certificate
/// table, the Hessian spectrum (symmetric log) with the ℓd positive eigenvalues and the gap to zero, the SLQ density, the
/// singular values of J against the rank tolerance, a slice tangent against normal to M, and the walk; for a loss that is
/// not a residual sum (the mean squared error, cross-entropy) what PyHessian and Li et al. report at any point: L and ‖∇L‖,
/// the top eigenvalues of ∇²L with their residuals, the trace with its standard error, the SLQ density and the 2D
/// filter-normalized surface, and one sentence saying why the sections about M are left out.
/// </summary>
public static class LandscapeReport
{
    /// <summary>
    /// The sections of the report of <paramref name="loss"/>: those about M (<see cref="ReportPlan.IsAboutManifold"/>) where the
    /// loss is the paper's residual sum (<see cref="LossFunction.IsResidualSum"/>), the curvature at the point otherwise, with
    /// the sentence saying why M is left out.
    /// </summary>
    /// <remarks>
    /// The mean squared error is Σ H_k² / (dℓ): the same zero set M, a Hessian scaled by 1/(dℓ). The library's geometry of M
    /// (the certificate's tolerances, Proposition 2.3's ∇²L = 2JᵀJ on M, the walk) is stated for Σ|H_k|^a and refuses every
    /// other loss (<see cref="LossFunction.RequireResidualSum"/>), so the report keeps to what that rule allows: the mean
    /// squared error gets the curvature report, and the sentence says that the squared loss's report has the sections about M.
    /// </remarks>
    public static ReportPlan Plan(LossFunction loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (loss.IsResidualSum)
        {
            return new ReportPlan(loss,
            [
                ReportSection.Certificate, ReportSection.ManifoldSpectrum, ReportSection.Density, ReportSection.JacobianSingularValues,
                ReportSection.ManifoldSlice, ReportSection.ManifoldWalk, ReportSection.TrainingHistory,
            ], null);
        }
        const string sections = "The certificate (on M?, rank of J, dim M, inertia), the spectrum against ℓd, the singular values of J, the slice tangent against normal to M and the walk on M are left out";
        string why = loss.Kind == LossKind.CrossEntropy
            ? ": they are about the set of global minima M of L, and under cross-entropy that set is empty (the infimum of L is approached only as ‖p‖ → ∞)."
            : ": they are stated for the paper's L = Σ|H_k|^a, and the mean squared error is that sum divided by dℓ (the same M, a Hessian scaled by 1/(dℓ)), so the report of the squared loss has them.";
        return new ReportPlan(loss,
        [
            ReportSection.LossAndGradient, ReportSection.TopEigenvalues, ReportSection.Trace, ReportSection.Density,
            ReportSection.FilterSurface, ReportSection.TrainingHistory,
        ], sections + why);
    }

    /// <summary>
    /// Computes the sections that apply to <paramref name="map"/>'s loss (<see cref="Plan"/>) at its point and appends them to
    /// <paramref name="report"/>: <see cref="Build"/>'s for the paper's residual sum, the curvature at the point for any
    /// other loss.
    /// </summary>
    /// <param name="report">The page to append to.</param>
    /// <param name="map">The model, data and loss.</param>
    /// <param name="options">Slice, walk, estimators' budgets and seed.</param>
    /// <param name="lossHistory">A training loss history to plot, if any: the losses, and the step of each (null: every step).</param>
    /// <param name="limits">
    /// The budget of every dense matrix, Krylov basis, probe block and grid; the token, checked at every stage (cancelling
    /// throws <see cref="OperationCanceledException"/>: half a report is none); the stages reported.
    /// </param>
    public static ReportResult Compose(HtmlReport report, IResidualProblem map, ReportOptions options, TrainingLosses? lossHistory = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        var plan = Plan(map.LossFunction);
        return plan.Includes(ReportSection.Certificate)
            ? new ReportResult(plan, Build(report, map, options, lossHistory, limits), null)
            : new ReportResult(plan, null, Curvature(report, map, plan, options, lossHistory, limits ?? RunLimits.Default));
    }

    /// <summary>
    /// The report of the paper's loss L = Σ|H_k|^a: computes the certificate and the sections about M at <paramref name="map"/>'s
    /// point and appends them to <paramref name="report"/>. <see cref="Compose"/> calls it where the loss allows (<see cref="Plan"/>).
    /// </summary>
    /// <param name="report">The page to append to.</param>
    /// <param name="map">The model and data, with a residual-sum loss (<see cref="LossFunction.IsResidualSum"/>).</param>
    /// <param name="options">Slice, walk, density and seed.</param>
    /// <param name="lossHistory">A training loss history to plot, if any: the losses, and the step of each (null: every step).</param>
    /// <param name="limits">
    /// The budget of every dense matrix, Krylov basis, factorization and grid of the report; the token, checked at every
    /// stage (cancelling throws <see cref="OperationCanceledException"/>: half a report is none); the stages reported: the
    /// certificate's (with the dense Hessian's columns), then the density, the slice and the walk.
    /// </param>
    /// <exception cref="LandscapeInputException">The loss is not a residual sum (<see cref="LossFunction.RequireResidualSum"/>).</exception>
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
            var slq = StochasticLanczosQuadrature.Estimate(new HessianOperator(map), new SlqOptions(Steps: Math.Min(options.SlqSteps, map.ParameterCount), ProbeCount: options.SlqProbes, Seed: options.Seed), limits.WithoutProgress());
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
        AddHistory(report, lossHistory);
        limits.Checkpoint("done", 1);
        return cert;
    }

    /// <summary>
    /// The sections of a loss that is not a residual sum, at <paramref name="map"/>'s point: L and ‖∇L‖₂ with the sentence
    /// saying why M is left out, the top eigenvalues of ∇²L by Lanczos with their residuals (<c>spectrum --method lanczos</c>),
    /// tr ∇²L by Hutch++ with its standard error (<c>trace</c>), the SLQ density (<c>spectrum --method slq</c>) and the 2D
    /// filter-normalized surface (<c>slice --dims 2 --directions filter</c>), each by the same library call as its command.
    /// </summary>
    private static PointCurvature Curvature(HtmlReport report, IResidualProblem map, ReportPlan plan, ReportOptions options, TrainingLosses? lossHistory, RunLimits limits)
    {
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        string G(double v) => v.ToString("G3", CultureInfo.InvariantCulture);
        string I(long v) => v.ToString(CultureInfo.InvariantCulture);
        int n = map.ParameterCount;

        limits.Checkpoint("loss and gradient", 0);
        double loss, gradientNorm;
        using (var scope = NewDisposeScope())
        {
            var (value, gradient) = map.LossAndGradient();
            loss = value;
            gradientNorm = gradient.norm().item<double>();
        }
        NonFinite.Require(gradientNorm, "‖∇L‖ at this point", "the gradient overflows float64 at this point");
        report.Heading("Loss and gradient");
        report.Table(["quantity", "value"],
        [
            ["loss", plan.Loss.Formula], ["L", F(loss)], ["‖∇L‖₂", F(gradientNorm)], ["parameters n", I(n)],
        ]);
        if (plan.LeftOut is { } why)
        {
            report.Paragraph(why);
        }

        limits.Checkpoint("top eigenvalues (Lanczos)", 0.05);
        int k = Math.Min(options.TopEigenvalues, n);
        var top = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, CurvatureKind.Hessian, k, SpectrumEnd.Largest, MaxIterations: options.LanczosSteps, Seed: options.Seed),
            limits.WithoutProgress());
        NonFinite.RequireAll(top.Eigenvalues, "an eigenvalue of ∇²L", "the Hessian-vector products overflow float64 at this point");
        report.Heading("Top eigenvalues of the Hessian");
        report.Table(["i", "λ", "‖Hv − λv‖", "converged"], top.Eigenvalues.Select((value, i) => (IReadOnlyList<string>)
        [
            I(i + 1), top.Converged[i] ? F(value) : $"{F(value)} (a Ritz value, not an eigenvalue)", top.Residuals is { } r ? G(r[i]) : "—", top.Converged[i] ? "yes" : "NO",
        ]));
        report.Paragraph($"The {k} largest eigenvalues of ∇²L{(k < options.TopEigenvalues ? $" (all n = {n} of the {options.TopEigenvalues} asked for)" : "")}: {top.Note}; " +
            $"{I(top.Products)} Hessian-vector products, status {top.Status.ToJsonName()}. An eigenvalue of ∇²L lies within ‖Hv − λv‖ of each value.");

        limits.Checkpoint("trace (Hutch++)", 0.3);
        var traceOptions = TraceEstimate.DefaultOptions(TraceMethod.HutchPlusPlus) with { MaxProbes = options.TraceProbes, Seed = options.Seed };
        var trace = TraceEstimate.Compute(CurvatureOperators.Create(map, CurvatureKind.Hessian), TraceMethod.HutchPlusPlus, traceOptions, limits.WithoutProgress());
        NonFinite.Require(trace.Trace, "the trace estimate", "the Hessian-vector products overflow float64 at this point");
        report.Heading("Trace of the Hessian");
        report.Table(["quantity", "value"],
        [
            ["tr ∇²L", $"{F(trace.Trace)} ± {G(trace.StandardError)} (standard error)"],
            ["method", $"Hutch++ (Meyer et al. 2021): tr(QᵀHQ) = {F(trace.LowRankPart)} on a sketch of {I(traceOptions.MaxProbes / 3)} vectors, plus Hutchinson on the deflated rest ({I(trace.SampleCount)} samples)"],
            ["Hessian-vector products", I(trace.Applications)], ["status", trace.Status.ToJsonName()],
        ]);

        limits.Checkpoint("spectral density (SLQ)", 0.5);
        var density = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Slq, Seed: options.Seed,
            Slq: new SlqOptions(Steps: Math.Min(options.SlqSteps, n), ProbeCount: options.SlqProbes)), limits.WithoutProgress());
        var slq = density.Slq!;
        report.Heading("Spectral density");
        report.Figure(Plots.Svg(Plots.Density(slq.Grid, slq.Density, "Spectral density of ∇²L (SLQ)")),
            $"Stochastic Lanczos quadrature, {slq.Rules.Count} probes × {slq.Rules[0].Steps} steps, Gaussian broadening σ² = {G(density.SlqOptions!.Sigma2)} of the normalized spectrum (Ghorbani et al. 2019); {I(slq.Applications)} Hessian-vector products.");

        limits.Checkpoint("filter-normalized surface", 0.8);
        var surface = LossSlice.Compute(map, new SliceOptions([SliceDirection.Filter, SliceDirection.Filter], options.SliceGrid, options.SliceRange, options.Seed), limits.WithoutProgress());
        report.Heading("Loss surface");
        report.Figure(Plots.Svg(Plots.Slice(surface, "Loss along two filter-normalized directions")),
            $"L(p + α d₁ + β d₂) on a {options.SliceGrid} × {options.SliceGrid} grid over [−{G(options.SliceRange)}, {G(options.SliceRange)}]², d₁ and d₂ Gaussian directions normalized filter by filter, d_filter ← d_filter·‖p_filter‖/‖d_filter‖ (Li et al. 2018, Section 4), d₂ made orthogonal to d₁; L at the point {F(surface.CenterLoss)}.");

        AddHistory(report, lossHistory);
        limits.Checkpoint("done", 1);
        return new PointCurvature(loss, gradientNorm, top, trace, density, surface);
    }

    /// <summary>The section "Training": the loss history, when one is given.</summary>
    private static void AddHistory(HtmlReport report, TrainingLosses? lossHistory)
    {
        if (lossHistory is { Losses.Count: > 0 } history)
        {
            report.Heading("Training");
            report.Figure(Plots.Svg(Plots.LossHistory(history.Losses, "Training loss", history.Steps)), $"{history.Losses.Count} recorded losses.");
        }
    }

    /// <summary>
    /// The section "Curvature approximations" from <see cref="ApproximationComparison.Compute"/>'s report: the error table (relative
    /// Frobenius and trace errors, top-K overlap, time, products) and one figure, each kind's top-K eigenvalues against the exact
    /// ones (<see cref="Plots.Approximations"/>).
    /// </summary>
    public static void AddApproximations(HtmlReport report, ApproximationReport approximations)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(approximations);
        string F(double v) => double.IsFinite(v) ? v.ToString("G4", CultureInfo.InvariantCulture) : "—";
        report.Heading("Curvature approximations");
        report.Paragraph($"How far each approximation A is from the exact {approximations.Against}: {approximations.Note}.");
        report.Table(["kind", "‖A − G‖_F/‖G‖_F", "trace error", $"top-{approximations.K} overlap (of {approximations.K})", "seconds", "products"],
            approximations.Approximations.Select(a => (IReadOnlyList<string>)
            [
                a.Kind, a.FrobeniusErrorStdError > 0 ? $"{F(a.FrobeniusError)} ± {F(a.FrobeniusErrorStdError)}" : F(a.FrobeniusError), F(a.TraceError),
                F(a.SubspaceOverlap), a.Seconds.ToString("0.000", CultureInfo.InvariantCulture), a.Products.ToString(CultureInfo.InvariantCulture),
            ]));
        report.Figure(Plots.Svg(Plots.Approximations(approximations, $"Top {approximations.K} eigenvalues: approximate against exact")),
            $"Each kind's i-th largest eigenvalue against the exact matrix's i-th largest, i = 1 … {approximations.K}; on the diagonal the two agree.");
    }

    /// <summary>
    /// The section "Paths between minima" from a path file (<see cref="PathFile"/>, written by <c>landscape connect --out</c>):
    /// L and max|H| along t for every method the file holds, and their table. A file without profiles is measured at its
    /// vertices on <paramref name="map"/>'s data (the model is restored afterwards). The max|H| figure, which measures the
    /// distance from M, is drawn for a residual-sum loss only (<see cref="Plan"/>).
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
        // max|H| and the manifold certification measure the distance from M, which only a residual-sum loss has (Plan).
        bool aboutM = Plan(map.LossFunction).Includes(ReportSection.Certificate);
        if (aboutM)
        {
            report.Figure(Plots.Svg(Plots.PathProfiles(profiles, "max |H| along the paths", residual: true)),
                "max_k |H_k| at the same points: a path inside M keeps it at the on-M tolerance; the peers' paths leave M between the endpoints.");
        }
        if (path.Methods.Count > 0)
        {
            IReadOnlyList<string> Row(ConnectionSummary m)
            {
                var cells = new List<string> { m.Method + (m.Aligned ? " (aligned)" : ""), F(m.MaxLoss), F(m.Barrier) };
                if (aboutM)
                {
                    cells.Add(F(m.MaxAbsResidual));
                }
                cells.AddRange([F(m.LengthRatio), m.Vertices.ToString(CultureInfo.InvariantCulture),
                    m.Evaluations.Forward.ToString(CultureInfo.InvariantCulture), m.Evaluations.Gradient.ToString(CultureInfo.InvariantCulture), m.Evaluations.Jacobian.ToString(CultureInfo.InvariantCulture),
                    F(m.Seconds), m.Status]);
                if (aboutM)
                {
                    cells.Add(m.Method == "manifold" ? (m.Certified ? "yes" : "no") : "—");
                }
                return cells;
            }
            string[] header = aboutM
                ? ["method", "max L", "barrier", "max|H|", "length / ‖A − B‖", "vertices", "forward", "gradient", "Jacobian", "seconds", "status", "certified"]
                : ["method", "max L", "barrier", "length / ‖A − B‖", "vertices", "forward", "gradient", "Jacobian", "seconds", "status"];
            report.Table(header, path.Methods.Select(Row));
            const string barrier = "Barrier: max L − ½(L(A) + L(B)) (Ainsworth et al. 2022).";
            report.Paragraph(aboutM
                ? barrier + " A manifold path is certified when every vertex is a regular point " +
                  "(rank J = ℓd decided across its gap) and every vertex and the 9 measured points of each segment (the chord projected onto M) have max|H| within the on-M tolerance. " +
                  "It does not prove the points between samples, nor that the straight chord between two vertices stays on M."
                : barrier);
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
