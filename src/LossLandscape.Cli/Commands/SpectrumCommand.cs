using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Problem;
using LossLandscape.Cluster;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape spectrum --model M --data D (--target|--one-hot) --method dense|gram|lanczos|slq [--operator hessian|ggn]
/// --k K --which largest|smallest|magnitude [--tolerance T] [--seed S] [--batch-size B] [--json F]</c>:
/// eigenvalues of ∇²L (or of the Gauss-Newton matrix 2JᵀJ), exact or matrix-free, or the spectral density by stochastic
/// Lanczos quadrature; every output states the Hessian-vector products used and the wall time.
/// </summary>
/// <remarks>One library call, <see cref="HessianSpectrum.Compute"/>; its <see cref="SpectrumResult"/> is rendered and, as <see cref="SpectrumOutput"/>, serialised.</remarks>
internal sealed class SpectrumCommand : LandscapeCommand<SpectrumCommand.Settings, SpectrumOutput>
{
    private readonly Option<string> _method = new("--method") { Description = "dense (all n eigenvalues) | gram (2·eig(JJᵀ), exact on M) | lanczos (k extreme eigenpairs) | slq (spectral density)", DefaultValueFactory = _ => "lanczos" };
    private readonly Option<string> _operator = CurvatureOptions.Operator();
    private readonly Option<int> _k = new("--k") { Description = "how many eigenvalues to report", DefaultValueFactory = _ => new SpectrumOptions().K };
    private readonly Option<string> _which = new("--which") { Description = "largest (descending) | smallest (ascending, negative curvature first) | magnitude (by |λ| descending)", DefaultValueFactory = _ => "largest" };
    private readonly Option<double> _tolerance = new("--tolerance") { Description = "Lanczos: a pair is converged when ‖Hv − λv‖ ≤ this·max|λ|", DefaultValueFactory = _ => new SpectrumOptions().Tolerance };
    private readonly Option<int?> _maxIterations = new("--max-iterations") { Description = "Lanczos: the most steps (default min(n, max(100, 10k)))" };
    private readonly Option<int> _steps = new("--steps") { Description = "slq: Lanczos steps per probe (default 90, Ghorbani et al. 2019)", DefaultValueFactory = _ => new SlqOptions().Steps };
    private readonly Option<int> _probes = new("--probes") { Description = "slq: probe vectors (default 10, Ghorbani et al. 2019)", DefaultValueFactory = _ => new SlqOptions().ProbeCount };
    private readonly Option<double> _sigma2 = new("--sigma2") { Description = "slq: Gaussian broadening σ² on the spectrum scaled to [−1, 1] (default 1e−5, Ghorbani et al. 2019)", DefaultValueFactory = _ => new SlqOptions().Sigma2 };
    private readonly Option<int> _gridPoints = new("--grid-points") { Description = "slq: points of the density grid (default 10 000, PyHessian)", DefaultValueFactory = _ => new SlqOptions().GridPoints };

    private SpectrumCommand()
        : base("spectrum", "Eigenvalues of ∇²L: all of them (dense), on M from 2·eig(JJᵀ) (gram), k extreme ones by Lanczos, or the density by stochastic Lanczos quadrature (slq).",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json,
            seedDescription: "seed of the random start (Lanczos) or probe (slq) vectors", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_method, _operator, _k, _which, _tolerance, _maxIterations, _steps, _probes, _sigma2, _gridPoints);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new SpectrumCommand().Build(context);

    /// <summary>The settings of <c>spectrum</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--method dense|gram|lanczos|slq</c>, as given (the JSON's <c>method</c>).</summary>
        public string Method { get; init; } = "lanczos";

        /// <summary><c>--operator hessian|ggn</c>.</summary>
        public string Operator { get; init; } = "hessian";

        /// <summary><c>--k K</c>: how many eigenvalues.</summary>
        public int K { get; init; } = new SpectrumOptions().K;

        /// <summary><c>--which largest|smallest|magnitude</c>, as given (the JSON's <c>which</c>).</summary>
        public string Which { get; init; } = "largest";

        /// <summary><c>--tolerance</c>: Lanczos's convergence tolerance.</summary>
        public double Tolerance { get; init; } = new SpectrumOptions().Tolerance;

        /// <summary><c>--max-iterations</c>: Lanczos's most steps, or null for the library's default.</summary>
        public int? MaxIterations { get; init; }

        /// <summary>SLQ's <c>--steps</c>, <c>--probes</c>, <c>--sigma2</c>, <c>--grid-points</c> (its seed and budget are the command's).</summary>
        public SlqOptions Slq { get; init; } = new();

        /// <summary>
        /// The library's options, parsed from the settings: throws <see cref="UsageException"/> naming the first option that
        /// is not one of its choices (in the order --method, --which, --k, --operator, --budget-gb). The values only the
        /// library can judge (--tolerance, --max-iterations, the SLQ settings) it refuses itself, as bad input.
        /// </summary>
        public SpectrumOptions ToOptions()
        {
            var method = ParseMethod(Method);
            var end = ParseWhich(Which);
            if (K < 1)
            {
                throw new UsageException($"--k: {K} is not a positive number of eigenvalues");
            }
            var kind = CurvatureOptions.ParseOperator(Operator);
            long budgetBytes = MemoryBudgetBytes();
            return new SpectrumOptions(method, kind, K, end, Tolerance, MaxIterations, Seed, budgetBytes, Slq: Slq);
        }
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<SpectrumOutput> JsonType => LandscapeJsonContext.Default.SpectrumOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Method = result.GetValue(_method)!,
        Operator = result.GetValue(_operator)!,
        K = result.GetValue(_k),
        Which = result.GetValue(_which)!,
        Tolerance = result.GetValue(_tolerance),
        MaxIterations = result.GetValue(_maxIterations),
        Slq = new SlqOptions(result.GetValue(_steps), result.GetValue(_probes), result.GetValue(_sigma2), result.GetValue(_gridPoints)),
    };

    /// <inheritdoc/>
    public override void Validate(Settings settings) => _ = settings.ToOptions();

    /// <inheritdoc/>
    protected override SpectrumOutput Execute(CommandRun run, Settings settings)
    {
        var map = run.Problem;
        var options = settings.ToOptions();
        SpectrumResult spectrum;
        try
        {
            spectrum = run.Progress($"{settings.Method} spectrum", progress => HessianSpectrum.Compute(map, options, progress));
        }
        catch (MemoryBudgetExceededException e) when (settings.Method is "dense" or "gram")
        {
            // The library names its own alternatives; on the command line they are options.
            throw new MemoryBudgetExceededException($"--method {settings.Method}", e.RequiredBytes, e.BudgetBytes,
                "use --method lanczos (k extreme eigenvalues) or --method slq (the spectral density), or raise --budget-gb");
        }
        NonFinite.RequireAll(spectrum.Eigenvalues, "an eigenvalue of the spectrum", "the Hessian-vector products overflow float64 at this point");
        return SpectrumOutput.From(settings.Method, settings.Which, map, spectrum);
    }

    /// <summary>Parses <c>--method</c>.</summary>
    public static SpectrumMethod ParseMethod(string text) => text switch
    {
        "dense" => SpectrumMethod.Dense,
        "gram" => SpectrumMethod.Gram,
        "lanczos" => SpectrumMethod.Lanczos,
        "slq" => SpectrumMethod.Slq,
        _ => throw new UsageException($"--method: '{text}' is not one of dense, gram, lanczos, slq"),
    };

    /// <summary>Parses <c>--which</c>.</summary>
    public static SpectrumEnd ParseWhich(string text) => text switch
    {
        "largest" => SpectrumEnd.Largest,
        "smallest" => SpectrumEnd.Smallest,
        "magnitude" => SpectrumEnd.LargestMagnitude,
        _ => throw new UsageException($"--which: '{text}' is not one of largest, smallest, magnitude"),
    };

    /// <summary>
    /// The eigenvalue as the table prints it: the number when it is one; "0 ± b" for a zero known from rank J; and for a Lanczos
    /// value that did not converge, the bound it is ("θ ± ρ, not converged": some eigenvalue lies within ρ of θ).
    /// </summary>
    public static string Cell(SpectrumResult s, int i)
    {
        ArgumentNullException.ThrowIfNull(s);
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        if (s.Zeros is { } zeros)
        {
            return $"0 ± {zeros.Bound.ToString("G3", CultureInfo.InvariantCulture)}";
        }
        if (!s.Converged[i])
        {
            string within = s.Residuals is { } r ? $" ± {r[i].ToString("G3", CultureInfo.InvariantCulture)}" : "";
            return $"NOT CONVERGED: {F(s.Eigenvalues[i])}{within} (a Ritz value, not an eigenvalue)";
        }
        return F(s.Eigenvalues[i]);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, SpectrumOutput result)
    {
        var s = result.Spectrum;
        string method = result.Method, which = result.Which;
        string F(double v) => v.ToString("G6", CultureInfo.InvariantCulture);
        string G(double v) => v.ToString("G3", CultureInfo.InvariantCulture);
        var info = new Table().Title(Markup.Escape($"spectrum ({method})")).AddColumns("quantity", "value");
        void Row(string key, string value) => info.AddRow(Markup.Escape(key), Markup.Escape(value));
        Row("data", $"{result.Data}: d = {result.D}, ℓ = {result.Outputs}");
        Row("parameters n", result.N.ToString(CultureInfo.InvariantCulture));
        Row("operator", s.Operator);
        Row("status", s.Status.ToJsonName());
        Row("how", s.Note);
        if (s.Manifold is { } manifold)
        {
            Row("on M", manifold.Holds ? $"yes (max|H| = {G(manifold.MaxAbsResidual)} ≤ {G(manifold.Tolerance)})" : $"no (max|H| = {G(manifold.MaxAbsResidual)} > tolerance {G(manifold.Tolerance)})");
        }
        if (s.Zeros is { } zeros)
        {
            Row("zero eigenvalues", $"{zeros.Multiplicity} = n − rank J (rank J = {zeros.Rank.Rank} ≤ ℓd = {result.Constraints}), each within ±{G(zeros.Bound)}; ‖∇²L − 2JᵀJ‖₂ ≈ {G(zeros.ResidualTermNorm)} (estimated); the rest ≥ {G(zeros.LowestNonzero)}");
        }
        if (s.Inertia is { } inertia)
        {
            Row("inertia of ∇²L", Reports.CertificateText.Inertia(inertia) + (inertia.Decided ? $"; {inertia.Note}" : ""));
        }
        int unconverged = s.Converged.Count(c => !c);
        if (unconverged > 0)
        {
            Row("NOT converged", $"{unconverged} of {s.Converged.Count} values: Ritz values with an eigenvalue within their residual, not eigenvalues (raise --max-iterations)");
        }
        Row("Hessian-vector products", s.Products.ToString(CultureInfo.InvariantCulture));
        if (result.Cluster is { } cluster)
        {
            Row("cluster", cluster.Describe());
        }
        Row("time", string.Create(CultureInfo.InvariantCulture, $"{s.Seconds:0.000} s"));
        if (s.Slq is { } slq)
        {
            double lo = slq.Rules.Min(r => r.Nodes.Min()), hi = slq.Rules.Max(r => r.Nodes.Max());
            Row("Ritz values span", $"[{F(lo)}, {F(hi)}]");
            for (int p = 0; p < slq.Moments.Count; p++)
            {
                Row($"tr(H^{p})/n", $"{F(slq.Moments[p])} ± {slq.MomentStandardErrors[p]:G3}");
            }
        }
        context.Console.Write(info);
        if (s.Slq is { } density)
        {
            context.Console.Write(Histogram(density));
            return;
        }
        var table = new Table().Title(Markup.Escape($"eigenvalues ({which})")).AddColumns("i", "λ");
        if (s.Residuals is not null)
        {
            table.AddColumn("‖Hv − λv‖");
        }
        if (s.Method == SpectrumMethod.Lanczos)
        {
            table.AddColumn("converged");
        }
        for (int i = 0; i < s.Eigenvalues.Count; i++)
        {
            var cells = new List<string> { (i + 1).ToString(CultureInfo.InvariantCulture), Cell(s, i) };
            if (s.Residuals is not null)
            {
                cells.Add(s.Residuals[i].ToString("G3", CultureInfo.InvariantCulture));
            }
            if (s.Method == SpectrumMethod.Lanczos)
            {
                cells.Add(s.Converged[i] ? "yes" : "NO");
            }
            table.AddRow(cells.Select(Markup.Escape).ToArray());
        }
        context.Console.Write(table);
    }

    /// <summary>The quadrature mass by interval of the Ritz range (<see cref="SlqResult.Histogram"/>), with a log-scale bar.</summary>
    private static Table Histogram(SlqResult slq)
    {
        var (lo, hi, mass) = slq.Histogram();
        int bins = mass.Length;
        double width = hi - lo;
        var table = new Table().Title("spectral mass by interval (log scale bar)").AddColumns("interval", "mass", "");
        for (int b = 0; b < bins; b++)
        {
            double a = lo + b * width / bins, c = lo + (b + 1) * width / bins;
            int bar = mass[b] <= 0 ? 0 : Math.Clamp((int)Math.Round(40 + 4 * Math.Log10(mass[b])), 1, 40);
            table.AddRow(Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"[{a:G4}, {c:G4})")), mass[b].ToString("G3", CultureInfo.InvariantCulture), new string('█', bar));
        }
        return table;
    }
}

/// <summary>
/// The result of <c>landscape spectrum</c>, and its JSON: the <see cref="SpectrumResult"/> of
/// <see cref="HessianSpectrum.Compute"/> with the field names the command has always written. A part that the method does
/// not produce is left out of the JSON (not written as null).
/// </summary>
/// <param name="Spectrum">The library's result, which the tables are rendered from (not serialised as such).</param>
internal sealed record SpectrumOutput([property: JsonIgnore] SpectrumResult Spectrum) : IClusterReported<SpectrumOutput>
{
    /// <summary>The rule behind <see cref="ZerosOutput"/>, in words (the JSON's <c>zeros.rule</c>).</summary>
    internal const string ZerosRule = "zero within ±bound, multiplicity n − rank J from rank J ≤ ℓd (Weyl: ∇²L = 2JᵀJ + R on M)";

    /// <summary>Where SLQ's defaults come from (the JSON's <c>options.source</c>).</summary>
    internal const string SlqSource = "Ghorbani, Krishnan & Xiao 2019 (m = 90 steps, n_v = 10 probes, σ² = 1e−5 on [−1, 1]); grid of PyHessian's density_generate";

    /// <summary><c>--method</c> as given: dense, gram, lanczos or slq.</summary>
    public required string Method { get; init; }

    /// <summary>The operator as the library names it (<see cref="SpectrumResult.Operator"/>).</summary>
    public required string Operator { get; init; }

    /// <summary><c>--which</c> as given: largest, smallest or magnitude (also the order of <see cref="Eigenvalues"/>).</summary>
    public required string Which { get; init; }

    /// <summary>Parameters n.</summary>
    public required int N { get; init; }

    /// <summary>Data rows d.</summary>
    public required int D { get; init; }

    /// <summary>Targets per row ℓ.</summary>
    public required int Outputs { get; init; }

    /// <summary>ℓd, the number of equations H_k = 0.</summary>
    public required int Constraints { get; init; }

    /// <summary>The data source.</summary>
    public required string Data { get; init; }

    /// <summary>How the computation ended (<see cref="SolverStatus"/>, by name).</summary>
    public required string Status { get; init; }

    /// <summary>How the values were computed, in words.</summary>
    public required string Note { get; init; }

    /// <summary>The k eigenvalues in the order asked for (all but SLQ).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? Eigenvalues { get; init; }

    /// <summary>Per eigenvalue: whether it is one to the stated accuracy (false: a Ritz value; all but SLQ).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<bool>? Converged { get; init; }

    /// <summary>Lanczos: ‖Hv − λv‖ of each value.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? Residuals { get; init; }

    /// <summary>Dense: all n eigenvalues, descending.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? AllEigenvalues { get; init; }

    /// <summary>The on-M test, where the method depends on it (<see cref="SpectrumResult.Manifold"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? OnManifold { get; init; }

    /// <summary>max|H_k|, with <see cref="OnManifold"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? MaxAbsResidual { get; init; }

    /// <summary>The on-M threshold, with <see cref="OnManifold"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? OnManifoldTolerance { get; init; }

    /// <summary>The zeros known from rank J (<see cref="SpectrumResult.Zeros"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ZerosOutput? Zeros { get; init; }

    /// <summary>The inertia of ∇²L by the σ(J) route (<see cref="SpectrumResult.Inertia"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public InertiaOutput? Inertia { get; init; }

    /// <summary>Lanczos steps taken.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Iterations { get; init; }

    /// <summary>Dense: max|A − Aᵀ|/max|A| before symmetrising.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Asymmetry { get; init; }

    /// <summary>SLQ: the broadening σ in the operator's units.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Sigma { get; init; }

    /// <summary>SLQ: the points the density is evaluated at.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? Grid { get; init; }

    /// <summary>SLQ: the smoothed density on <see cref="Grid"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? Density { get; init; }

    /// <summary>SLQ: estimates of tr(A^k)/n.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? Moments { get; init; }

    /// <summary>SLQ: their standard errors over probes.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<double>? MomentStandardErrors { get; init; }

    /// <summary>SLQ: probes whose Krylov space became invariant early.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Breakdowns { get; init; }

    /// <summary>SLQ: the options used.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SlqOptionsOutput? Options { get; init; }

    /// <summary>SLQ: one Gauss quadrature rule per probe.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<QuadratureOutput>? Quadrature { get; init; }

    /// <summary>Operator (Hessian-vector) products used.</summary>
    /// <summary>With <c>--cluster</c>: shards, retries and where the time went; absent otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public ClusterOutput? Cluster { get; init; }

    /// <inheritdoc/>
    public SpectrumOutput WithCluster(ClusterOutput cluster) => this with { Cluster = cluster };

    public required long HessianVectorProducts { get; init; }

    /// <summary>Wall time of the computation (<see cref="SpectrumResult.Seconds"/>).</summary>
    public required double Seconds { get; init; }

    /// <summary>The output of <paramref name="s"/>, computed by <c>--method</c> <paramref name="method"/> for <c>--which</c> <paramref name="which"/> on <paramref name="map"/>.</summary>
    public static SpectrumOutput From(string method, string which, IResidualProblem map, SpectrumResult s)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(s);
        var slq = s.SlqOptions is null ? null : s.Slq;
        return new SpectrumOutput(s)
        {
            Method = method,
            Operator = s.Operator,
            Which = which,
            N = map.ParameterCount,
            D = map.Data.Count,
            Outputs = map.Data.OutputDim,
            Constraints = map.Constraints,
            Data = map.Data.Source,
            Status = s.Status.ToJsonName(),
            Note = s.Note,
            Eigenvalues = s.Slq is null ? s.Eigenvalues : null,
            Converged = s.Slq is null ? s.Converged : null,
            Residuals = s.Residuals,
            AllEigenvalues = s.AllEigenvalues,
            OnManifold = s.Manifold?.Holds,
            MaxAbsResidual = s.Manifold?.MaxAbsResidual,
            OnManifoldTolerance = s.Manifold?.Tolerance,
            Zeros = s.Zeros is { } z
                ? new ZerosOutput(z.Multiplicity, z.Bound, z.ResidualTermNorm, z.ResidualTermSteps > 0, z.ResidualTermSteps, z.Rank.Rank, map.Constraints, z.LowestNonzero, ZerosRule)
                : null,
            Inertia = s.Inertia is { } i ? new InertiaOutput(i.Positive, i.Zero, i.Negative, i.Decided, i.Note) : null,
            Iterations = s.Iterations,
            Asymmetry = s.Asymmetry,
            Sigma = slq?.Sigma,
            Grid = slq?.Grid,
            Density = slq?.Density,
            Moments = slq?.Moments,
            MomentStandardErrors = slq?.MomentStandardErrors,
            Breakdowns = slq?.Breakdowns,
            Options = slq is not null && s.SlqOptions is { } o
                ? new SlqOptionsOutput(o.Steps, o.ProbeCount, o.Sigma2, o.GridPoints, o.GridMargin, o.Seed, SlqSource)
                : null,
            Quadrature = slq?.Rules.Select(r => new QuadratureOutput(r.Nodes, r.Weights)).ToArray(),
            HessianVectorProducts = s.Products,
            Seconds = s.Seconds,
        };
    }
}

/// <summary>The zero eigenvalues known from rank J (<see cref="ZeroEigenvalues"/>), as <c>spectrum</c>'s JSON writes them.</summary>
/// <param name="Multiplicity">n − rank J.</param>
/// <param name="Bound">Each lies in [−Bound, Bound].</param>
/// <param name="ResidualTermNorm">The estimate of ‖∇²L − 2JᵀJ‖₂.</param>
/// <param name="ResidualTermEstimated">Whether that norm was estimated by Lanczos (false: known to be 0).</param>
/// <param name="ResidualTermSteps">Lanczos steps of the estimate.</param>
/// <param name="Rank">rank J.</param>
/// <param name="Constraints">ℓd.</param>
/// <param name="LowestNonzero">Every other eigenvalue is at least this (null when ∞).</param>
/// <param name="Rule">The rule, in words.</param>
internal sealed record ZerosOutput(int Multiplicity, double Bound, double ResidualTermNorm, bool ResidualTermEstimated, int ResidualTermSteps, int Rank, int Constraints, double LowestNonzero, string Rule);

/// <summary>The inertia of ∇²L by the σ(J) route (<see cref="Geometry.Inertia"/>), as <c>spectrum</c>'s JSON writes it.</summary>
/// <param name="Positive">Positive eigenvalues.</param>
/// <param name="Zero">Zero eigenvalues.</param>
/// <param name="Negative">Negative eigenvalues.</param>
/// <param name="Decided">Whether the counts rest on a resolved gap.</param>
/// <param name="Note">How they were decided, or why not.</param>
internal sealed record InertiaOutput(int Positive, int Zero, int Negative, bool Decided, string Note);

/// <summary>The SLQ options used (<see cref="SlqOptions"/>), as <c>spectrum</c>'s JSON writes them.</summary>
/// <param name="Steps">Lanczos steps per probe.</param>
/// <param name="Probes">Probe vectors.</param>
/// <param name="Sigma2">The broadening σ² on [−1, 1].</param>
/// <param name="GridPoints">Points of the density grid.</param>
/// <param name="GridMargin">The grid's margin, relative to the Ritz range.</param>
/// <param name="Seed">Seed of the probes.</param>
/// <param name="Source">Where the defaults come from.</param>
internal sealed record SlqOptionsOutput(int Steps, int Probes, double Sigma2, int GridPoints, double GridMargin, int Seed, string Source);

/// <summary>One probe's Gauss quadrature rule (<see cref="QuadratureRule"/>): nodes θᵢ and weights τᵢ.</summary>
/// <param name="Nodes">The Ritz values θᵢ, ascending.</param>
/// <param name="Weights">The weights τᵢ, summing to 1.</param>
internal sealed record QuadratureOutput(IReadOnlyList<double> Nodes, IReadOnlyList<double> Weights);
