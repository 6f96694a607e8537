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
/// <c>landscape report --model M --data D (--target|--one-hot) --out DIR [--history train.json]</c>: one
/// self-contained page DIR/index.html with the certificate, the plots, the settings and the command.
/// </summary>
internal sealed class ReportCommand : LandscapeCommand<ReportCommand.Settings, ReportOutput>
{
    private readonly Option<string> _output = new("--out") { Description = "the directory to write index.html into", Required = true };
    private readonly Option<string?> _history = new("--history") { Description = "a training JSON (from landscape train --json) whose loss history to plot" };
    private readonly Option<int> _grid = new("--grid") { Description = "points per axis of the slice", DefaultValueFactory = _ => 31 };
    private readonly Option<string?> _path = new("--path") { Description = "a path file (from landscape connect --out) to add as the section \"Paths between minima\"" };
    private readonly Option<int> _walkSteps = new("--walk-steps") { Description = "steps of the walk on M (0: none)", DefaultValueFactory = _ => 10 };

    private ReportCommand()
        : base("report", "Write one self-contained HTML page (DIR/index.html): certificate, spectrum, density, σ(J), tangent/normal slice, walk.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster, seedDescription: "seed of the random draws", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_output, _history, _path, _grid, _walkSteps);

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

        /// <summary><c>--grid</c>: points per axis of the slice.</summary>
        public int Grid { get; init; } = 31;

        /// <summary><c>--walk-steps</c> (a negative number is none).</summary>
        public int WalkSteps { get; init; } = 10;
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
        Grid = result.GetValue(_grid),
        WalkSteps = result.GetValue(_walkSteps),
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
            ["activations", string.Join(", ", network.DistinctActivations.Select(a => a.Name))],
        ]);
        report.Heading("Command").Code(run.Context.CommandLine);
        run.Progress("report", limits => LandscapeReport.Build(report, run.Problem, new ReportOptions(SliceGrid: settings.Grid, WalkSteps: Math.Max(0, settings.WalkSteps), Seed: settings.Seed), losses, limits));
        if (path is not null)
        {
            LandscapeReport.AddPaths(report, path, run.Problem);
        }
        return new ReportOutput(report.Save(settings.Out));
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, ReportOutput result) =>
        context.Console.MarkupLine(Markup.Escape($"wrote {result.Page}"));
}

/// <summary>The result of <c>landscape report</c> (printed; report writes no JSON).</summary>
/// <param name="Page">The page written, DIR/index.html.</param>
internal sealed record ReportOutput(string Page);
