using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Operators;
using LossLandscape.Problem;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape trace --model M --data D (--target|--one-hot) --method hutchinson|hutch++|exact [--operator hessian|ggn]
/// [--probes N] [--seed S] [--batch-size B] [--json F]</c>: tr ∇²L with its standard error, the Hessian-vector
/// products used and the wall time.
/// </summary>
internal sealed class TraceCommand : LandscapeCommand<TraceCommand.Settings, TraceOutput>
{

    private readonly Option<string> _method = new("--method") { Description = "hutchinson | hutch++ | exact (Σ eᵢᵀHeᵢ, n products)", DefaultValueFactory = _ => "hutch++" };
    private readonly Option<string> _operator = CurvatureOptions.Operator();
    private readonly Option<int?> _probes = new("--probes") { Description = $"the budget of products: Hutchinson's most probes (default {TraceEstimate.HutchinsonProbes}, PyHessian), Hutch++'s total (default {TraceEstimate.HutchPlusPlusProbes})" };
    private readonly Option<double> _tolerance = new("--tolerance") { Description = "Hutchinson stops when the standard error ≤ this·|estimate| (default 1e−3, PyHessian)", DefaultValueFactory = _ => new TraceOptions().Tolerance };
    private readonly Option<bool> _perLayer = CurvatureOptions.PerLayer();
    private readonly Option<int> _k = new("--k") { Description = "--per-layer: the top eigenvalues of each layer (default 5)", DefaultValueFactory = _ => new PerLayerOptions().K };

    private TraceCommand()
        : base("trace", "The trace of ∇²L: Hutchinson or Hutch++ with a standard error, or exact from n Hessian-vector products.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json,
            seedDescription: "seed of the Rademacher probes", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_method, _operator, _probes, _tolerance, _perLayer, _k);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new TraceCommand().Build(context);

    /// <summary>The settings of <c>trace</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--method hutchinson|hutch++|exact</c>.</summary>
        public string Method { get; init; } = "hutch++";

        /// <summary><c>--operator hessian|ggn</c>.</summary>
        public string Operator { get; init; } = "hessian";

        /// <summary><c>--probes N</c>: the budget of products, or null for the method's default.</summary>
        public int? Probes { get; init; }

        /// <summary><c>--tolerance</c>: Hutchinson stops when the standard error ≤ this·|estimate|.</summary>
        public double Tolerance { get; init; } = new TraceOptions().Tolerance;

        /// <summary><c>--per-layer</c>: each layer's block instead of the whole matrix (<see cref="PerLayerCurvature"/>).</summary>
        public bool PerLayer { get; init; }

        /// <summary><c>--k</c>: with <c>--per-layer</c>, each layer's top eigenvalues.</summary>
        public int K { get; init; } = new PerLayerOptions().K;

        /// <summary>The operator <see cref="Operator"/> names (<see cref="CurvatureOptions.ParseOperator"/>).</summary>
        public CurvatureKind Kind => CurvatureOptions.ParseOperator(Operator);

        /// <summary>The estimator's options: the budget (the method's default unless <c>--probes</c>), tolerance and seed.</summary>
        public TraceOptions Options
        {
            get
            {
                var defaults = TraceEstimate.DefaultOptions(Estimator);
                return defaults with { MaxProbes = Probes ?? defaults.MaxProbes, Tolerance = Tolerance, Seed = Seed };
            }
        }

        /// <summary>The estimator <see cref="Method"/> names.</summary>
        public TraceMethod Estimator => Method switch
        {
            "hutchinson" => TraceMethod.Hutchinson,
            "hutch++" => TraceMethod.HutchPlusPlus,
            _ => TraceMethod.Exact,
        };
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<TraceOutput> JsonType => LandscapeJsonContext.Default.TraceOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Method = result.GetValue(_method)!,
        Operator = result.GetValue(_operator)!,
        Probes = result.GetValue(_probes),
        Tolerance = result.GetValue(_tolerance),
        PerLayer = result.GetValue(_perLayer),
        K = result.GetValue(_k),
    };

    /// <inheritdoc/>
    /// <remarks>The tolerance is the library's to refuse (<see cref="LandscapeInputException"/>, exit 2).</remarks>
    public override void Validate(Settings settings)
    {
        if (settings.Method is not ("hutchinson" or "hutch++" or "exact"))
        {
            throw new UsageException($"--method: '{settings.Method}' is not one of hutchinson, hutch++, exact");
        }
        bool hutchPlusPlus = settings.Method == "hutch++";
        if (settings.Probes is { } b && (b < 1 || (hutchPlusPlus && b < TraceEstimate.HutchPlusPlusMinimumProbes)))
        {
            throw new UsageException($"--probes: {b} is too few ({(hutchPlusPlus ? "Hutch++ needs at least 3" : "at least 1")})");
        }
        _ = CurvatureOptions.ParseOperator(settings.Operator); // refuses an unknown --operator here, before any file is read
        if (settings.K < 1)
        {
            throw new UsageException($"--k: {settings.K} is not a positive number of eigenvalues");
        }
    }

    /// <inheritdoc/>
    protected override TraceOutput Execute(CommandRun run, Settings settings)
    {
        var map = run.Problem;
        var kind = settings.Kind;
        var options = settings.Options;
        var method = settings.Estimator;
        var set = run.Data;
        if (settings.PerLayer)
        {
            var perLayer = run.Progress("per-layer trace", limits => PerLayerCurvature.Compute(map, new PerLayerOptions(kind, settings.K, TraceMethod: method, Trace: options, Seed: settings.Seed), limits));
            return new TraceOutput(settings.Method, CurvatureOperators.Name(kind), map.ParameterCount, null, "each layer's diagonal block: its trace and its top eigenvalues by Lanczos", run.Seconds, set.Source, set.Count, set.OutputDim)
            {
                PerLayer = perLayer,
            };
        }
        var op = CurvatureOperators.Create(map, kind);
        var trace = run.Progress("trace", limits => TraceEstimate.Compute(op, method, options, limits));
        NonFinite.Require(trace.Trace, "the trace estimate", "the Hessian-vector products overflow float64 at this point");
        double seconds = run.Seconds;
        string note = settings.Method switch
        {
            "hutchinson" => string.Create(CultureInfo.InvariantCulture, $"Hutchinson 1990: mean of {trace.Samples.Count} Rademacher samples zᵀHz, standard error s/√N; stops when it is ≤ {options.Tolerance:G3}·|estimate|"),
            "hutch++" => string.Create(CultureInfo.InvariantCulture, $"Hutch++ (Meyer et al. 2021): tr(QᵀHQ) = {trace.LowRankPart:G6} on a sketch of {options.MaxProbes / 3} vectors, plus Hutchinson on the deflated rest ({trace.Samples.Count} samples)"),
            _ => $"exact: Σ eᵢᵀHeᵢ over the n = {op.Columns} unit vectors",
        };
        return new TraceOutput(settings.Method, CurvatureOperators.Name(kind), map.ParameterCount, trace, note, seconds, set.Source, set.Count, set.OutputDim);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, TraceOutput result)
    {
        if (result.PerLayer is { } perLayer)
        {
            CurvatureOptions.RenderPerLayer(context, perLayer, $"{result.Data}: d = {result.D}, ℓ = {result.Outputs}, n = {result.N}");
            return;
        }
        var trace = result.Trace!;
        string F(double v) => v.ToString("G8", CultureInfo.InvariantCulture);
        var table = new Table().Title(Markup.Escape($"trace ({result.Method})")).AddColumns("quantity", "value");
        void Row(string key, string value) => table.AddRow(Markup.Escape(key), Markup.Escape(value));
        Row("data", $"{result.Data}: d = {result.D}, ℓ = {result.Outputs}");
        Row("parameters n", result.N.ToString(CultureInfo.InvariantCulture));
        Row("operator", result.Operator);
        Row("trace", $"{F(trace.Trace)} ± {trace.StandardError:G3}");
        Row("status", trace.Status.ToJsonName());
        Row("how", result.Note);
        Row("Hessian-vector products", trace.Applications.ToString(CultureInfo.InvariantCulture));
        Row("time", string.Create(CultureInfo.InvariantCulture, $"{result.Seconds:0.000} s"));
        if (result.Cluster is { } c)
        {
            Row("cluster", string.Create(CultureInfo.InvariantCulture, $"{c.Shards} shards on {c.Workers} workers, {c.Calls} calls, {c.Retries} retried"));
        }
        context.Console.Write(table);
    }
}

/// <summary>The result of <c>landscape trace</c>, and its JSON: the estimate (<see cref="TraceResult"/>) and what the command adds.</summary>
/// <param name="Method">hutchinson, hutch++ or exact, as given.</param>
/// <param name="Operator">The operator (<see cref="CurvatureOperators.Name"/>).</param>
/// <param name="N">Parameters n.</param>
/// <param name="Trace">The estimate of tr A (<see cref="TraceEstimate.Compute"/>), written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="Note">How it was computed, in words.</param>
/// <param name="Seconds">Wall time of the estimate.</param>
/// <param name="Data">The data source.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">Targets per row ℓ.</param>
internal sealed record TraceOutput(string Method, string Operator, int N, [property: JsonPropertyName(JsonOutput.Inline)] TraceResult? Trace, string Note, double Seconds,
    string Data, int D, int Outputs) : ClusterReported<TraceOutput>
{
    /// <summary>With <c>--per-layer</c>, each layer's trace and eigenvalues (<see cref="PerLayerResult"/>: <c>perLayer.layers</c>, …); else none.</summary>
    public PerLayerResult? PerLayer { get; init; }
}
