using LossLandscape.Curvature;
using LossLandscape.Problem;
using LossLandscape.Engine;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Paths;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape report --model M --data D (--target|--one-hot) [--loss L] --out DIR [--history train.json] [--path path.json] [--approx]</c>:
/// one self-contained page DIR/index.html with the settings, the command and the sections that apply to the loss
/// (<see cref="LandscapeReport.Plan"/>): the certificate and the plots about M for the squared loss; L, ‖∇L‖, the top
/// eigenvalues, the trace, the density and the filter-normalized surface for a loss that is not a residual sum.
/// </summary>
internal sealed class ReportCommand : LandscapeCommand<ReportCommand.Settings, ReportOutput>
{
    private readonly Option<string> _output = new("--out") { Description = "the directory to write index.html into", Required = true };
    private readonly Option<string?> _history = new("--history") { Description = "a training JSON (from landscape train --json) whose loss history to plot" };
    private readonly Option<int> _grid = new("--grid") { Description = "points per axis of the slice", DefaultValueFactory = _ => 31 };
    private readonly Option<string?> _path = new("--path") { Description = "a path file (from landscape connect --out) to add as the section \"Paths between minima\"" };
    private readonly Option<int> _walkSteps = new("--walk-steps") { Description = "steps of the walk on M (0: none)", DefaultValueFactory = _ => 10 };
    private readonly Option<int> _k = new("--k") { Description = "mse, cross-entropy: how many of the largest Hessian eigenvalues Lanczos finds (at most n)", DefaultValueFactory = _ => new ReportOptions().TopEigenvalues };
    private readonly Option<int?> _maxIterations = new("--max-iterations") { Description = "mse, cross-entropy: the most Lanczos steps for them (default min(n, max(100, 10k)))" };
    private readonly Option<int> _traceProbes = new("--trace-probes") { Description = "mse, cross-entropy: Hutch++'s budget of Hessian-vector products for the trace (at least 3)", DefaultValueFactory = _ => new ReportOptions().TraceProbes };
    private readonly Option<int> _slqSteps = new("--slq-steps") { Description = "Lanczos steps per probe of the spectral density (default 90, Ghorbani et al. 2019)", DefaultValueFactory = _ => new ReportOptions().SlqSteps };
    private readonly Option<bool> _approx = new("--approx") { Description = "add the section \"Curvature approximations\": KFAC, EKFAC, the diagonal and the block diagonal against the Gauss-Newton matrix (as landscape approx --k 5)" };
    private readonly Option<int> _slqProbes = new("--slq-probes") { Description = "probe vectors of the spectral density (default 10, Ghorbani et al. 2019)", DefaultValueFactory = _ => new ReportOptions().SlqProbes };

    private ReportCommand()
        : base("report", "Write one self-contained HTML page (DIR/index.html): certificate, spectrum, density, σ(J), tangent/normal slice, walk; for mse and cross-entropy, whose report is not about M: L and ‖∇L‖, top Hessian eigenvalues, trace, density, filter-normalized surface.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster, seedDescription: "seed of the random draws", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_output, _history, _path, _grid, _walkSteps, _k, _maxIterations, _traceProbes, _slqSteps, _slqProbes, _approx);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new ReportCommand().Build(context);

    /// <summary>The settings of <c>report</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--out DIR</c>.</summary>
        public string Out { get; init; } = "";

        /// <summary><c>--history</c>: a training JSON with a loss history.</summary>
        public string? History { get; init; }

        /// <summary><c>--path</c>: a path file from <c>connect --out</c>.</summary>
        public string? Path { get; init; }

        /// <summary><c>--approx</c>: add the section "Curvature approximations".</summary>
        public bool Approx { get; init; }

        /// <summary><c>--grid</c>: points per axis of the slice.</summary>
        public int Grid { get; init; } = 31;

        /// <summary><c>--walk-steps</c> (a negative number is none).</summary>
        public int WalkSteps { get; init; } = 10;

        /// <summary><c>--k</c>: the top eigenvalues of a loss that is not a residual sum.</summary>
        public int K { get; init; } = new ReportOptions().TopEigenvalues;

        /// <summary><c>--max-iterations</c>: their most Lanczos steps, or null for the library's default.</summary>
        public int? MaxIterations { get; init; }

        /// <summary><c>--trace-probes</c>: Hutch++'s budget for the trace of a loss that is not a residual sum.</summary>
        public int TraceProbes { get; init; } = new ReportOptions().TraceProbes;

        /// <summary><c>--slq-steps</c>: Lanczos steps per probe of the density.</summary>
        public int SlqSteps { get; init; } = new ReportOptions().SlqSteps;

        /// <summary><c>--slq-probes</c>: probes of the density.</summary>
        public int SlqProbes { get; init; } = new ReportOptions().SlqProbes;

        /// <summary>The library's options from the settings.</summary>
        public ReportOptions Options => new(SliceGrid: Grid, WalkSteps: Math.Max(0, WalkSteps), Seed: Seed, TopEigenvalues: K, LanczosSteps: MaxIterations,
            TraceProbes: TraceProbes, SlqSteps: SlqSteps, SlqProbes: SlqProbes);
    }

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Grid < 2)
        {
            throw new UsageException($"--grid: {settings.Grid} is fewer than 2 points per axis");
        }
        if (settings.WalkSteps < 0)
        {
            throw new UsageException($"--walk-steps: {settings.WalkSteps} is not a number of steps ≥ 0 (0: no walk)");
        }
        if (settings.K < 1)
        {
            throw new UsageException($"--k: {settings.K} is not a positive number of eigenvalues");
        }
        if (settings.MaxIterations is { } steps && steps < 1)
        {
            throw new UsageException($"--max-iterations: {steps} is not a positive number of Lanczos steps");
        }
        if (settings.TraceProbes < TraceEstimate.HutchPlusPlusMinimumProbes)
        {
            throw new UsageException($"--trace-probes: {settings.TraceProbes} is too few (Hutch++ needs at least {TraceEstimate.HutchPlusPlusMinimumProbes})");
        }
        if (settings.SlqSteps < 1)
        {
            throw new UsageException($"--slq-steps: {settings.SlqSteps} is not a positive number of Lanczos steps");
        }
        if (settings.SlqProbes < 1)
        {
            throw new UsageException($"--slq-probes: {settings.SlqProbes} is not a positive number of probes");
        }
        LossSlice.RequireFits(settings.Grid, 2, settings.Limits());
        OutputDirectory.RequireWritable("--out", settings.Out);
        if (settings.History is { } history && !File.Exists(history))
        {
            throw new UsageException($"--history: {LandscapeApp.Shorten(history)}: file not found");
        }
    }

    /// <summary>
    /// Reads <c>lossHistory</c> (an array of numbers) from a training JSON, and <c>lossSteps</c> (the step of each, one
    /// increasing integer per loss) where the file has it.
    /// </summary>
    public static TrainingLosses ReadHistory(string path)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{path}: file not found");
        }
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), JsonInput.Strict);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("lossHistory", out var array) && array.ValueKind == JsonValueKind.Array)
            {
                // train --json writes a non-finite loss as null; the plot leaves it out (NaN).
                var losses = array.EnumerateArray().Select((e, i) => e.ValueKind switch
                {
                    JsonValueKind.Null => double.NaN,
                    JsonValueKind.Number when e.TryGetDouble(out double v) => v,
                    _ => throw new UsageException($"{path}: entry {i} of 'lossHistory' is {LandscapeApp.Shorten(e.GetRawText())}, not a number (write the file with landscape train --json)"),
                }).ToArray();
                return new TrainingLosses(losses, ReadSteps(path, doc.RootElement, losses.Length));
            }
        }
        catch (JsonException e)
        {
            throw new UsageException($"{path}: not a training JSON: {(e.LineNumber is { } line ? $"not valid JSON at line {line + 1}" : JsonInput.Reason(e))}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{path}: cannot read: {e.Message.ReplaceLineEndings(" ")}");
        }
        throw new UsageException($"{path}: no 'lossHistory' array (write one with landscape train --json)");
    }

    /// <summary>train's <c>lossSteps</c>: absent (null: every step), or one increasing integer ≥ 0 per loss.</summary>
    private static int[]? ReadSteps(string path, JsonElement root, int count)
    {
        if (!root.TryGetProperty("lossSteps", out var steps))
        {
            return null;
        }
        if (steps.ValueKind != JsonValueKind.Array || steps.GetArrayLength() != count)
        {
            throw new UsageException($"{path}: 'lossSteps' is not an array of {count} steps, one per entry of 'lossHistory' (write the file with landscape train --json)");
        }
        var values = steps.EnumerateArray().Select((e, i) => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v) && v >= 0 ? v
            : throw new UsageException($"{path}: entry {i} of 'lossSteps' is {LandscapeApp.Shorten(e.GetRawText())}, not a step number")).ToArray();
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] <= values[i - 1])
            {
                throw new UsageException($"{path}: 'lossSteps' does not increase at entry {i} ({values[i - 1]}, then {values[i]})");
            }
        }
        return values;
    }

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> InputFiles(Settings settings) => [("--history", settings.History), ("--path", settings.Path)];

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", System.IO.Path.Combine(settings.Out, HtmlReport.PageName))];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Out = result.GetValue(_output)!,
        History = result.GetValue(_history),
        Path = result.GetValue(_path),
        Approx = result.GetValue(_approx),
        Grid = result.GetValue(_grid),
        WalkSteps = result.GetValue(_walkSteps),
        K = result.GetValue(_k),
        MaxIterations = result.GetValue(_maxIterations),
        TraceProbes = result.GetValue(_traceProbes),
        SlqSteps = result.GetValue(_slqSteps),
        SlqProbes = result.GetValue(_slqProbes),
    };

    /// <inheritdoc/>
    protected override ReportOutput Execute(CommandRun run, Settings settings)
    {
        var losses = settings.History is { } h ? ReadHistory(h) : null;
        var path = settings.Path is { } p ? PathFile.Load(p) : null;
        var set = run.Data;
        var network = run.Point.Network;
        var report = new HtmlReport($"Loss landscape of {Path.GetFileName(run.ModelPath)}");
        report.Heading("Settings").Table(["setting", "value"],
        [
            ["model", run.ModelPath], ["data", set.Source], ["d, p, ℓ", $"{set.Count}, {set.InputDim}, {set.OutputDim}"], ["n", network.ParameterCount.ToString(CultureInfo.InvariantCulture)],
            ["activations", network is LossLandscape.Models.TorchScriptNetwork script ? script.Describe() : string.Join(", ", network.DistinctActivations.Select(a => a.Name))],
        ]);
        report.Heading("Command").Code(run.Context.CommandLine);
        run.Progress("report", limits => LandscapeReport.Compose(report, run.Problem, settings.Options, losses, limits));
        if (path is not null)
        {
            LandscapeReport.AddPaths(report, path, run.Problem);
        }
        if (settings.Approx)
        {
            // The kinds the model's layers take (KFAC and EKFAC need linear or conv2d layers), K = 5 or n if smaller.
            var kinds = KroneckerKindsApply(run.Problem)
                ? new[] { ApproximationKind.Kfac, ApproximationKind.Ekfac, ApproximationKind.Diagonal, ApproximationKind.Block }
                : new[] { ApproximationKind.Diagonal };
            var options = new ApproximationOptions(kinds, K: Math.Min(new ApproximationOptions().K, run.Problem.ParameterCount), Seed: settings.Seed);
            var approximations = run.Progress("approximations", limits => ApproximationComparison.Compute(run.Problem, options, limits));
            LandscapeReport.AddApproximations(report, approximations);
        }
        return new ReportOutput(report.Save(settings.Out));
    }

    /// <summary>Whether the model has per-layer blocks that KFAC, EKFAC and the block diagonal take.</summary>
    private static bool KroneckerKindsApply(LossLandscape.Problem.IResidualProblem problem)
    {
        try
        {
            LossLandscape.Approximations.KfacOperator.RequireLayers(LossLandscape.Approximations.ParameterBlocks.Of(problem.Model));
            return true;
        }
        catch (LandscapeInputException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, ReportOutput result) =>
        context.Console.MarkupLine(Markup.Escape($"wrote {result.Page}"));
}

/// <summary>The result of <c>landscape report</c> (printed; report writes no JSON).</summary>
/// <param name="Page">The page written, DIR/index.html.</param>
internal sealed record ReportOutput(string Page);
