using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Problem;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape spectrum --model M --data D (--target|--one-hot) --method dense|gram|lanczos|slq [--operator hessian|ggn]
/// --k K --which largest|smallest|magnitude [--tolerance T] [--seed S] [--batch-size B] [--json F]</c>:
/// eigenvalues of ∇²L (or of the Gauss-Newton matrix 2JᵀJ), exact or matrix-free, or the spectral density by stochastic
/// Lanczos quadrature; every output states the Hessian-vector products used and the wall time.
/// </summary>
/// <remarks>One library call, <see cref="HessianSpectrum.Compute"/>; its <see cref="SpectrumResult"/> is rendered and serialised (<see cref="SpectrumOutput"/>).</remarks>
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
    private readonly Option<bool> _perLayer = CurvatureOptions.PerLayer();

    private SpectrumCommand()
        : base("spectrum", "Eigenvalues of ∇²L: all of them (dense), on M from 2·eig(JJᵀ) (gram), k extreme ones by Lanczos, or the density by stochastic Lanczos quadrature (slq).",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json,
            seedDescription: "seed of the random start (Lanczos) or probe (slq) vectors", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_method, _operator, _k, _which, _tolerance, _maxIterations, _steps, _probes, _sigma2, _gridPoints, _perLayer);

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

        /// <summary><c>--per-layer</c>: each layer's block instead of the whole matrix (<see cref="PerLayerCurvature"/>).</summary>
        public bool PerLayer { get; init; }

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
            return new SpectrumOptions(method, kind, K, end, Tolerance, MaxIterations, Seed, Slq: Slq);
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
        PerLayer = result.GetValue(_perLayer),
    };

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        var options = settings.ToOptions();
        if (settings.PerLayer && options.Method != SpectrumMethod.Lanczos)
        {
            throw new UsageException($"--per-layer finds each layer's top-k by Lanczos: --method {settings.Method} does not apply with it");
        }
    }

    /// <inheritdoc/>
    protected override SpectrumOutput Execute(CommandRun run, Settings settings)
    {
        var map = run.Problem;
        var options = settings.ToOptions();
        if (settings.PerLayer)
        {
            var perLayer = run.Progress("per-layer spectrum", limits => PerLayerCurvature.Compute(map, new PerLayerOptions(options.Operator, options.K, options.Which, options.Tolerance, Seed: settings.Seed), limits));
            return new SpectrumOutput(null, map.ParameterCount, map.Data.Count, map.Data.OutputDim, map.Constraints, map.Data.Source) { PerLayer = perLayer };
        }
        SpectrumResult spectrum;
        try
        {
            spectrum = run.Progress($"{settings.Method} spectrum", limits => HessianSpectrum.Compute(map, options, limits));
        }
        catch (MemoryBudgetExceededException e) when (settings.Method is "dense" or "gram")
        {
            // The library names its own alternatives; on the command line they are options.
            throw new MemoryBudgetExceededException($"--method {settings.Method}", e.RequiredBytes, e.BudgetBytes,
                "use --method lanczos (k extreme eigenvalues) or --method slq (the spectral density), or raise --budget-gb");
        }
        NonFinite.RequireAll(spectrum.Eigenvalues, "an eigenvalue of the spectrum", "the Hessian-vector products overflow float64 at this point");
        return new SpectrumOutput(spectrum, map.ParameterCount, map.Data.Count, map.Data.OutputDim, map.Constraints, map.Data.Source);
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
        if (result.PerLayer is { } perLayer)
        {
            CurvatureOptions.RenderPerLayer(context, perLayer, $"{result.Data}: d = {result.D}, ℓ = {result.Outputs}, n = {result.N}");
            return;
        }
        var s = result.Spectrum!;
        string method = settings.Method, which = settings.Which;
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
/// The result of <c>landscape spectrum</c>, and its JSON: the library's <see cref="SpectrumResult"/> with its eigenvalues, on-M
/// test and SLQ density at its own level, and the data. A part that the method does not produce is not written.
/// </summary>
/// <param name="Spectrum">The library's result, which the tables are rendered from, written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="N">Parameters n.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">Targets per row ℓ.</param>
/// <param name="Constraints">ℓd, the number of equations H_k = 0.</param>
/// <param name="Data">The data source.</param>
internal sealed record SpectrumOutput([property: JsonPropertyName(JsonOutput.Inline)] SpectrumResult? Spectrum, int N, int D, int Outputs, int Constraints, string Data)
    : ClusterReported<SpectrumOutput>
{
    /// <summary>The eigenvalues in the order asked for (<see cref="SpectrumResult.Eigenvalues"/>); none for SLQ or per layer.</summary>
    public IReadOnlyList<double>? Eigenvalues => Spectrum is { Slq: null } s ? s.Eigenvalues : null;

    /// <summary>Per eigenvalue, whether it is one to the stated accuracy (<see cref="SpectrumResult.Converged"/>); none for SLQ or per layer.</summary>
    public IReadOnlyList<bool>? Converged => Spectrum is { Slq: null } s ? s.Converged : null;

    /// <summary>The on-M test, where the method depends on it (<see cref="SpectrumResult.Manifold"/>), written in place.</summary>
    [JsonPropertyName(JsonOutput.Inline + "manifold")]
    public OnManifoldTest? Manifold => Spectrum?.Manifold;

    /// <summary>SLQ's density, moments and quadrature rules (<see cref="SpectrumResult.Slq"/>), written in place.</summary>
    [JsonPropertyName(JsonOutput.Inline + "slq")]
    public SlqResult? Slq => Spectrum?.Slq;

    /// <summary>The counts and verdict of the inertia by the σ(J) route (<see cref="SpectrumResult.Inertia"/>).</summary>
    public InertiaCounts? Inertia => Spectrum?.Inertia is { } i ? new(i.Positive, i.Zero, i.Negative, i.Decided, i.Note) : null;

    /// <summary>With <c>--per-layer</c>, each layer's eigenvalues and trace (<see cref="PerLayerResult"/>: <c>perLayer.layers</c>, …); else none.</summary>
    public PerLayerResult? PerLayer { get; init; }
}

/// <summary>
/// The counts and verdict of an <see cref="Geometry.Inertia"/>, as <c>spectrum</c>'s JSON has always written them: without the
/// inertia's eigenvalues, which the gram spectrum writes beside it (certify's <c>hessian</c> is the whole record).
/// </summary>
internal sealed record InertiaCounts(int Positive, int Zero, int Negative, bool Decided, string Note);
