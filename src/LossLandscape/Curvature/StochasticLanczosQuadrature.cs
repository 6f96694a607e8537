using System.Text.Json.Serialization;
using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>Options of <see cref="StochasticLanczosQuadrature.Estimate"/>; the defaults are those of Ghorbani, Krishnan &amp; Xiao 2019 and PyHessian.</summary>
/// <param name="Steps">Lanczos steps m per probe; default 90 (Ghorbani et al. 2019, §2.2 and Appendix: m = 90).</param>
/// <param name="ProbeCount">Independent Gaussian probe vectors n_v; default 10 (Ghorbani et al. 2019: n_v = 10).</param>
/// <param name="Sigma2">
/// Gaussian broadening σ² on the spectrum normalised to [−1, 1]; default 1e−5 (Ghorbani et al. 2019, §2.2). In the
/// operator's units σ = √σ²·(λ_max − λ_min)/2, with λ_min, λ_max the extreme Ritz values over all probes.
/// </param>
/// <param name="GridPoints">Points of the grid the density is evaluated on; default 10 000 (PyHessian's <c>density_generate</c>, num_bins).</param>
/// <param name="GridMargin">
/// The grid spans [λ_min − δ, λ_max + δ] with δ = margin·(λ_max − λ_min); default 0.01 (PyHessian's overhead of 0.01,
/// made relative), about 6σ at the default σ².
/// </param>
/// <param name="MomentCount">Moments tr(A^k)/n estimated, k = 0 … MomentCount − 1; default 5.</param>
/// <param name="Seed">Seed of the probes; default 0.</param>
/// <param name="BreakdownTolerance">β_j ≤ tol·‖T‖ ends a probe early: its Krylov space is invariant and its quadrature exact; default 1e−12 (as <see cref="LanczosOptions"/>).</param>
/// <remarks>In JSON: the steps, probes, σ², grid, seed and where the defaults come from (<see cref="Source"/>).</remarks>
public sealed record SlqOptions(
    int Steps = 90,
    [property: JsonPropertyName("probes")] int ProbeCount = 10,
    double Sigma2 = 1e-5,
    int GridPoints = 10_000,
    double GridMargin = 0.01,
    [property: JsonIgnore] int MomentCount = 5,
    int Seed = 0,
    [property: JsonIgnore] double BreakdownTolerance = 1e-12)
{
    /// <summary>Where the defaults come from, in words.</summary>
    public string Source => "Ghorbani, Krishnan & Xiao 2019 (m = 90 steps, n_v = 10 probes, σ² = 1e−5 on [−1, 1]); grid of PyHessian's density_generate";
}

/// <summary>The Gauss quadrature rule of one probe v (‖v‖ = 1): vᵀf(A)v ≈ Σ_i τ_i f(θ_i).</summary>
/// <param name="Nodes">θ_i, the Ritz values of T_m (ascending).</param>
/// <param name="Weights">τ_i = (e₁ᵀs_i)², the squared first components of T_m's eigenvectors; Σ τ_i = 1.</param>
/// <param name="Steps">Lanczos steps taken: m, or fewer after an invariant Krylov space (then the rule is exact).</param>
public sealed record QuadratureRule(IReadOnlyList<double> Nodes, IReadOnlyList<double> Weights, [property: JsonIgnore] int Steps);

/// <summary>The result of stochastic Lanczos quadrature.</summary>
/// <param name="Dimension">n, the size of the operator.</param>
/// <param name="Rules">One quadrature rule per probe.</param>
/// <param name="Grid">The points t at which the density is evaluated.</param>
/// <param name="Density">φ_σ(t) = (1/n_v) Σ_probes Σ_i τ_i g_σ(t − θ_i), g_σ the N(0, σ²) density; integrates to 1.</param>
/// <param name="Sigma">σ in the operator's units.</param>
/// <param name="Moments">Estimates of tr(A^k)/n for k = 0 … MomentCount − 1 (mean over probes of Σ_i τ_i θ_i^k).</param>
/// <param name="MomentStandardErrors">Their standard errors over probes (s/√n_v; 0 with one probe).</param>
/// <param name="Applications">Operator applications (Hessian-vector products).</param>
/// <param name="Breakdowns">Probes whose Krylov space became invariant before m steps.</param>
/// <param name="Status">Converged (every probe ran m steps or became exact), or Breakdown when the operator produced NaN (then Grid and Density are empty and the moments NaN).</param>
/// <remarks>In JSON: the density, its grid and σ, the moments, the breakdowns and the rules (as <c>quadrature</c>), written beside the spectrum's own status and products.</remarks>
public sealed record SlqResult(
    [property: JsonIgnore] long Dimension,
    [property: JsonPropertyName("quadrature")] IReadOnlyList<QuadratureRule> Rules,
    IReadOnlyList<double> Grid,
    IReadOnlyList<double> Density,
    double Sigma,
    IReadOnlyList<double> Moments,
    IReadOnlyList<double> MomentStandardErrors,
    [property: JsonIgnore] long Applications,
    int Breakdowns,
    [property: JsonIgnore] SolverStatus Status)
{
    /// <summary>An estimate of tr f(A) = n·E[vᵀf(A)v] ≈ (n/n_v) Σ_probes Σ_i τ_i f(θ_i).</summary>
    public double Trace(Func<double, double> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return Dimension * Rules.Average(r => r.Nodes.Select((t, i) => r.Weights[i] * f(t)).Sum());
    }

    /// <summary>Bins of <see cref="Histogram"/> by default: 20, a screen's height of rows.</summary>
    public const int HistogramBins = 20;

    /// <summary>
    /// The quadrature's spectral mass in <paramref name="bins"/> equal intervals of the Ritz values' range [lo, hi]: for each
    /// interval the mean over probes of Σ τ_i over the nodes θ_i in it (the last interval closed). The masses sum to 1 (each
    /// rule's weights do), so a bin's mass is the fraction of the n eigenvalues the quadrature places there.
    /// </summary>
    public (double Low, double High, double[] Mass) Histogram(int bins = HistogramBins)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bins);
        double lo = Rules.Min(r => r.Nodes.Min()), hi = Rules.Max(r => r.Nodes.Max());
        double width = Math.Max(hi - lo, double.Epsilon);
        var mass = new double[bins];
        foreach (var rule in Rules)
        {
            for (int i = 0; i < rule.Nodes.Count; i++)
            {
                int b = Math.Clamp((int)((rule.Nodes[i] - lo) / width * bins), 0, bins - 1);
                mass[b] += rule.Weights[i] / Rules.Count;
            }
        }
        return (lo, lo + width, mass);
    }
}

/// <summary>
/// Stochastic Lanczos quadrature (SLQ) for the spectral density φ(t) = (1/n) Σ_i δ(t − λ_i) of a symmetric operator,
/// smoothed by a Gaussian: for a unit probe v, m Lanczos steps from q₁ = v give T_m = SΘSᵀ and the Gauss rule
/// vᵀf(A)v ≈ Σ_i τ_i f(θ_i), τ_i = (e₁ᵀs_i)², exact for polynomials f of degree ≤ 2m − 1.
/// </summary>
/// <remarks>
/// Golub &amp; Meurant, Matrices, Moments and Quadrature (2010), Ch. 6; Lin, Saad &amp; Yang 2016, "Approximating spectral
/// densities of large matrices", §3.2; applied to neural-network Hessians by Ghorbani, Krishnan &amp; Xiao 2019
/// ("An investigation into neural net optimization via Hessian eigenvalue density", Algorithm 1), whose defaults are
/// used, and by PyHessian (Yao et al. 2020). Probes are Gaussian, normalised; E[vᵀf(A)v] = tr f(A)/n for v uniform
/// on the sphere. The Lanczos basis is re-orthogonalised fully (twice), as in <see cref="Lanczos"/>.
/// </remarks>
public static class StochasticLanczosQuadrature
{
    /// <summary>
    /// The smoothed spectral density, the quadrature rules and the moments of the symmetric operator <paramref name="op"/>;
    /// the n × m basis within the budget of <paramref name="limits"/>, whose token is checked before each step.
    /// </summary>
    public static SlqResult Estimate(LinearOperator op, SlqOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= new SlqOptions();
        limits ??= RunLimits.Default;
        Lanczos.RequireSymmetric(op);
        if (options.Steps < 1 || options.ProbeCount < 1 || options.GridPoints < 2 || options.MomentCount < 0 || !(options.Sigma2 > 0))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"SLQ needs Steps ≥ 1, ProbeCount ≥ 1, GridPoints ≥ 2, MomentCount ≥ 0 and σ² > 0, got Steps = {options.Steps}, ProbeCount = {options.ProbeCount}, GridPoints = {options.GridPoints}, MomentCount = {options.MomentCount}, σ² = {options.Sigma2}"), nameof(options));
        }
        long n = op.Columns;
        int m = (int)Math.Min(n, options.Steps);
        long startApplications = op.Applications;
        var rng = new Random(options.Seed);
        var rules = new List<QuadratureRule>();
        int breakdowns = 0;
        bool nan = false;
        for (int probe = 0; probe < options.ProbeCount; probe++)
        {
            using var probeScope = NewDisposeScope();
            using var basis = new KrylovBasis(op, m, limits);
            basis.Start(tensor(Probes.Gaussian(rng, n), dtype: op.DType, device: op.Device));
            while (true)
            {
                limits.ThrowIfCancellationRequested();
                double beta = basis.Step();
                if (ConvergenceTest.IsBreakdown(beta, basis.Alpha[^1]))
                {
                    nan = true; // the operator produced NaN: no quadrature rule from this probe or any later one.
                    break;
                }
                if (beta <= options.BreakdownTolerance * basis.NormBound)
                {
                    if (basis.Size < m)
                    {
                        breakdowns++;
                    }
                    break;
                }
                if (basis.Size >= m)
                {
                    break;
                }
                basis.Advance();
            }
            if (nan)
            {
                break;
            }
            var (values, vectors) = basis.Ritz();
            var weights = Enumerable.Range(0, values.Length).Select(i => vectors[0, i] * vectors[0, i]).ToArray();
            rules.Add(new QuadratureRule(values, weights, basis.Size));
        }

        if (nan)
        {
            var unknown = Enumerable.Repeat(double.NaN, options.MomentCount).ToArray();
            return new SlqResult(n, rules, [], [], double.NaN, unknown, unknown, op.Applications - startApplications, breakdowns, SolverStatus.Breakdown);
        }

        // Moments: Σ_i τ_i θ_i^k per probe, then mean and standard error over probes.
        var moments = new double[options.MomentCount];
        var errors = new double[options.MomentCount];
        for (int k = 0; k < options.MomentCount; k++)
        {
            var perProbe = rules.Select(r => r.Nodes.Select((t, i) => r.Weights[i] * Math.Pow(t, k)).Sum()).ToArray();
            (moments[k], errors[k]) = MeanAndStandardError(perProbe);
        }

        double lo = rules.Min(r => r.Nodes.Min());
        double hi = rules.Max(r => r.Nodes.Max());
        double width = hi - lo;
        if (!(width > 0))
        {
            width = Math.Max(Math.Abs(hi), 1.0) * 1e-3; // a single point mass: a narrow bump around it.
        }
        double sigma = Math.Sqrt(options.Sigma2) * width / 2; // [λ_min, λ_max] ↦ [−1, 1] scales by 2/width.
        double margin = options.GridMargin * width;
        var grid = new double[options.GridPoints];
        var density = new double[options.GridPoints];
        double step = (width + 2 * margin) / (options.GridPoints - 1);
        double norm = 1.0 / (Math.Sqrt(2 * Math.PI) * sigma * rules.Count);
        for (int g = 0; g < grid.Length; g++)
        {
            double t = lo - margin + g * step;
            grid[g] = t;
            double sum = 0;
            foreach (var r in rules)
            {
                for (int i = 0; i < r.Nodes.Count; i++)
                {
                    double z = (t - r.Nodes[i]) / sigma;
                    sum += r.Weights[i] * Math.Exp(-0.5 * z * z);
                }
            }
            density[g] = sum * norm;
        }
        return new SlqResult(n, rules, grid, density, sigma, moments, errors, op.Applications - startApplications, breakdowns, SolverStatus.Converged);
    }

    /// <summary>The sample mean and its standard error s/√N (0 for one sample).</summary>
    internal static (double Mean, double StandardError) MeanAndStandardError(IReadOnlyList<double> samples)
    {
        double mean = samples.Average();
        if (samples.Count < 2)
        {
            return (mean, 0);
        }
        double variance = samples.Sum(x => (x - mean) * (x - mean)) / (samples.Count - 1);
        return (mean, Math.Sqrt(variance / samples.Count));
    }
}
