using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Paths;
using LossLandscape.Problem;
using LossLandscape.Reports;
using Spectre.Console;
using static TorchSharp.torch;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape connect --model A --to B --data D (--target|--one-hot) [--method linear,bezier,polychain,neb,manifold]
/// [--align none|weight-matching] [--points 61] [--budget N] [--bends K] [--seed S] [--out path.json] [--plot F] [--json F]</c>:
/// joins two minima by every requested method, measured the same way, side by side.
/// </summary>
internal sealed class ConnectCommand : LandscapeCommand<ConnectCommand.Settings, ConnectOutput>
{
    /// <summary>Every method, in the order the table lists them: the peers' first, the path inside M last.</summary>
    private const string AllMethods = "linear,bezier,polychain,neb,manifold";

    /// <summary>
    /// The on-M tolerance, relative to max(1, max|y|): 1e−10, the tolerance of <c>certify</c>'s and <c>walk</c>'s
    /// retraction (about 4.5·10⁵ ε above the float64 floor of max|H| on M).
    /// </summary>
    private const double DefaultTolerance = 1e-10;

    private readonly Option<string> _to = new("--to") { Description = "the second endpoint B (a model file of the same architecture)", Required = true };
    private readonly Option<string> _method = new("--method") { Description = $"one or several of {AllMethods}, comma-separated", DefaultValueFactory = _ => AllMethods };
    private readonly Option<string> _align = new("--align") { Description = "none | weight-matching (permute B's hidden units or channels to match A's first; MLPs and sequential networks)", DefaultValueFactory = _ => "none" };
    private readonly Option<int> _points = new("--points") { Description = "evenly spaced points t at which every path is measured (plus 9 per segment)", DefaultValueFactory = _ => PathEvaluation.DefaultPoints };
    private readonly Option<int> _budget = new("--budget") { Description = "gradient evaluations of bezier, polychain and neb; Jacobian evaluations of manifold", DefaultValueFactory = _ => ConnectOptions.DefaultMaxEvaluations };
    private readonly Option<int> _bends = new("--bends") { Description = "points of the Bézier curve / polygonal chain, endpoints included", DefaultValueFactory = _ => 3 };
    private readonly Option<double?> _lr = new("--lr") { Description = "step size of the curves and NEB (default: chosen by each method, see the docs)" };
    private readonly Option<double> _tolerance = new("--tolerance") { Description = "on-M tolerance: max|H| ≤ this·max(1, max|y|)", DefaultValueFactory = _ => DefaultTolerance };
    private readonly Option<string?> _output = new("--out") { Description = "write the path (losslandscape.path/1): the manifold path if it ran, else the last method's" };
    private readonly Option<string?> _plot = new("--plot") { Description = "plot the loss along t for every method (.svg or .png)" };

    private ConnectCommand()
        : base("connect", "Join two minima A and B: the straight line, Garipov's curves, AutoNEB, and a certified path inside M, measured the same way.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json, seedDescription: "seed of the curves' t draws and of weight matching's layer order", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_to, _method, _align, _points, _budget, _bends, _lr, _tolerance, _output, _plot);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new ConnectCommand().Build(context);

    /// <summary>The settings of <c>connect</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--to B</c>.</summary>
        public string To { get; init; } = "";

        /// <summary><c>--method</c>, parsed.</summary>
        public IReadOnlyList<ConnectMethod> Methods { get; init; } = [];

        /// <summary><c>--method</c> as given, for messages.</summary>
        public string MethodText { get; init; } = AllMethods;

        /// <summary><c>--align</c>: whether weight matching runs first.</summary>
        public string Align { get; init; } = "none";

        /// <summary><c>--points</c>.</summary>
        public int Points { get; init; } = PathEvaluation.DefaultPoints;

        /// <summary><c>--budget</c>.</summary>
        public int Budget { get; init; } = ConnectOptions.DefaultMaxEvaluations;

        /// <summary><c>--bends</c>.</summary>
        public int Bends { get; init; } = 3;

        /// <summary><c>--lr</c>.</summary>
        public double? LearningRate { get; init; }

        /// <summary><c>--tolerance</c>, relative to max(1, max|y|).</summary>
        public double Tolerance { get; init; } = DefaultTolerance;

        /// <summary><c>--out</c>.</summary>
        public string? Out { get; init; }

        /// <summary><c>--plot</c>.</summary>
        public string? Plot { get; init; }
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<ConnectOutput> JsonType => LandscapeJsonContext.Default.ConnectOutput;

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> InputFiles(Settings settings) => [("--to", settings.To)];

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out), ("--plot", settings.Plot)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result)
    {
        string text = result.GetValue(_method)!;
        var methods = new List<ConnectMethod>();
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!ConnectMethodText.TryParse(name, out var m))
            {
                throw new UsageException($"--method: unknown method '{name}' (one or several of {AllMethods}, comma-separated)");
            }
            if (!methods.Contains(m))
            {
                methods.Add(m);
            }
        }
        return new Settings
        {
            To = result.GetValue(_to)!,
            Methods = methods,
            MethodText = text,
            Align = result.GetValue(_align)!,
            Points = result.GetValue(_points),
            Budget = result.GetValue(_budget),
            Bends = result.GetValue(_bends),
            LearningRate = result.GetValue(_lr),
            Tolerance = result.GetValue(_tolerance),
            Out = result.GetValue(_output),
            Plot = result.GetValue(_plot),
        };
    }

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Methods.Count == 0)
        {
            throw new UsageException($"--method: no method given (one or several of {AllMethods}, comma-separated)");
        }
        if (settings.Align is not ("none" or "weight-matching"))
        {
            throw new UsageException($"--align: '{settings.Align}' is not none or weight-matching");
        }
        if (settings.Points < 2)
        {
            throw new UsageException($"--points: {settings.Points} is fewer than 2 (a path is measured at least at its two ends)");
        }
        if (settings.Budget < 1)
        {
            throw new UsageException($"--budget: {settings.Budget} is not a positive number of evaluations");
        }
        if (settings.Bends < 3)
        {
            throw new UsageException($"--bends: {settings.Bends} is fewer than 3 (the two endpoints and one trainable bend)");
        }
        if (settings.LearningRate is { } lr && !(lr > 0 && double.IsFinite(lr)))
        {
            throw new UsageException($"--lr: {lr.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }
        if (!(settings.Tolerance > 0) || !double.IsFinite(settings.Tolerance))
        {
            throw new UsageException($"--tolerance: {settings.Tolerance.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }
        if (settings.Plot is { } plot && Path.GetExtension(plot).ToLowerInvariant() is not (".svg" or ".png"))
        {
            throw new UsageException($"--plot: {plot}: the format is chosen by the extension, .svg or .png");
        }
    }

    /// <inheritdoc/>
    protected override ConnectOutput Execute(CommandRun run, Settings settings)
    {
        var a = run.Point;
        var b = CommonOptions.LoadModel(settings.To, run.Data.InputShape, CommonOptions.ComputeType(settings.Dtype));
        if (b.Network.ParameterCount == a.Network.ParameterCount && b.Network.InputDim == a.Network.InputDim && b.Network.OutputDim == a.Network.OutputDim)
        {
            // --model was checked by the execution path; --to likewise (a mismatch of architectures is the library's to name).
            var saved = run.Problem.GetPoint();
            try
            {
                run.Problem.SetPoint(tensor(b.Parameters, dtype: ScalarType.Float64));
                FiniteLoss.RequirePoint(run.Problem);
            }
            finally
            {
                run.Problem.SetPoint(saved);
            }
        }
        var map = run.Problem;
        double tolerance = OnManifoldTest.Threshold(run.Problem, settings.Tolerance);
        var options = new ConnectOptions(settings.Points, settings.Budget, settings.Seed, settings.Bends, tolerance, settings.LearningRate);
        // Ctrl-C: the running method stops at its next step and returns what it has; the rest are skipped.
        var report = run.Progress("connect", limits =>
            PathConnection.Connect(map, a, b, settings.Methods, options, settings.Align == "weight-matching", limits));
        var results = report.Results;

        string? pathFile = null;
        if (settings.Out is { } outPath && results.Count > 0)
        {
            var chosen = results.FirstOrDefault(r => r.Method == ConnectMethod.Manifold) ?? results[^1];
            PathFile.Save(outPath, a.Network, chosen, results);
            pathFile = outPath;
        }
        if (settings.Plot is { } plotPath && results.Count > 0)
        {
            var profiles = results.Select(r => new PathProfile(r.Method.ToJsonName() + (r.Aligned ? " (aligned)" : ""), r.Profile)).ToList();
            Plots.Save(Plots.PathProfiles(profiles, "Loss along the paths from A (t = 0) to B (t = 1)"), plotPath);
        }
        return new ConnectOutput(map.ParameterCount, map.Constraints, tolerance, report, pathFile, results.Count > 0 ? settings.Plot : null, run.Seconds);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, ConnectOutput result)
    {
        static string F(double v) => double.IsFinite(v) ? v.ToString("G4", CultureInfo.InvariantCulture) : "—";
        var table = new Table().AddColumns("method", "max L", "barrier", "max|H|", "length / ‖A − B‖", "vertices", "forward", "gradient", "Jacobian", "seconds", "status", "certified");
        var results = result.Report.Results;
        foreach (var m in results.Select(ConnectionSummary.From))
        {
            table.AddRow(m.Method + (m.Aligned ? " (aligned)" : ""), F(m.MaxLoss), F(m.Barrier), F(m.MaxAbsResidual), F(m.LengthRatio), m.Vertices.ToString(CultureInfo.InvariantCulture),
                m.Evaluations.Forward.ToString(CultureInfo.InvariantCulture), m.Evaluations.Gradient.ToString(CultureInfo.InvariantCulture), m.Evaluations.Jacobian.ToString(CultureInfo.InvariantCulture),
                F(m.Seconds), m.Status, m.Method == "manifold" ? (m.Certified ? "yes" : "NO") : "—");
        }
        if (results.Count > 0)
        {
            context.Console.Write(table);
        }
        context.Console.MarkupLine(Markup.Escape(FormattableString.Invariant($"n = {result.N}, ℓd = {result.Constraints}; on-M tolerance max|H| ≤ {result.Tolerance:G3}; every path measured at its points plus 9 per segment")));
        if (result.Report.Identical)
        {
            context.Console.MarkupLine("weight matching mapped B onto A exactly: B is A with its hidden units (or channels) permuted, the same point after alignment; no path to find (barrier 0)");
        }
        if (result.Report.Alignment is { } al)
        {
            context.Console.MarkupLine(Markup.Escape(FormattableString.Invariant(
                $"weight matching: ‖A − B‖ {al.DistanceBefore:G4} → {al.DistanceAfter:G4} after permuting B's hidden units or channels ({al.Sweeps} sweeps, {al.Steps} layer steps, {al.Status.ToJsonName()})")));
        }
        foreach (var m in results.Where(m => m.Detail is not null))
        {
            context.Console.MarkupLine(Markup.Escape($"{m.Method.ToJsonName()}: {m.Detail}"));
        }
        if (results.FirstOrDefault(m => m.Certificate is not null) is { Certificate: { } c })
        {
            context.Console.MarkupLine(Markup.Escape(FormattableString.Invariant(
                $"manifold certificate: {(c.Holds ? "holds" : "does NOT hold")}; {c.Segments.Count} segments, min σmin(J) {c.MinSigmaMin:G3}, {c.IrregularVertices} irregular vertices, reached B: {(c.ReachedEnd ? "yes" : $"no ({c.Progress:P1} of the way)")}")));
            context.Console.MarkupLine(Markup.Escape(
                "the check proves: every vertex and 9 points of each segment's projected chord are on M to the tolerance, and every vertex is a regular point; it does not prove the points between samples, nor that the straight chord between vertices is on M (see the segments' straightChordMaxAbsResidual)"));
        }
        if (result.PathFile is { } f)
        {
            context.Console.MarkupLine(Markup.Escape($"wrote {f}"));
        }
        if (result.Plot is { } p)
        {
            context.Console.MarkupLine(Markup.Escape($"wrote {p}"));
        }
        if (result.Report.Cancelled)
        {
            context.Console.MarkupLine("[yellow]interrupted (Ctrl-C): the methods that finished are reported[/]");
        }
    }

    /// <inheritdoc/>
    protected override bool Interruptible => true;

    /// <inheritdoc/>
    protected override int ExitCode(Settings settings, ConnectOutput result) =>
        result.Report.Cancelled ? TrainCommand.Interrupted
        : result.Report.Connected ? LandscapeApp.Success
        : LandscapeApp.Failure;
}

/// <summary>
/// The result of <c>landscape connect</c>, and its JSON: the library's report (<see cref="PathConnection.Connect"/>) with
/// one entry per method, and what the command adds.
/// </summary>
/// <param name="N">Parameters n.</param>
/// <param name="Constraints">ℓd.</param>
/// <param name="Tolerance">The on-M tolerance on max|H| (absolute).</param>
/// <param name="Report">The alignment, whether B was A and whether the run was interrupted, written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="PathFile">The path file written, if any.</param>
/// <param name="Plot">The plot written, if any.</param>
/// <param name="Seconds">Wall time.</param>
internal sealed record ConnectOutput(
    int N,
    int Constraints,
    double Tolerance,
    [property: JsonPropertyName(JsonOutput.Inline)] ConnectionReport Report,
    string? PathFile,
    string? Plot,
    double Seconds) : ClusterReported<ConnectOutput>
{
    /// <summary>Whether B was aligned to A by weight matching.</summary>
    public bool Aligned => Report.Alignment is not null;

    /// <summary>One entry per method, in the order run: the library's result with its measures beside it.</summary>
    public IReadOnlyList<ConnectMethodOutput> Methods => [.. Report.Results.Select(r => new ConnectMethodOutput(r))];
}

/// <summary>One method's entry in <c>connect</c>'s JSON: the library's result, written in place, and its measures beside it.</summary>
/// <param name="Result">The method's result (<see cref="ConnectionResult"/>).</param>
internal sealed record ConnectMethodOutput([property: JsonPropertyName(JsonOutput.Inline)] ConnectionResult Result)
{
    /// <summary>max L, the barrier, max|H|, the length ratio and the points measured (<see cref="ConnectionResult.Measures"/>), written in place.</summary>
    [JsonPropertyName(JsonOutput.Inline + "measures")]
    public PathMeasures Measures => Result.Measures;
}
