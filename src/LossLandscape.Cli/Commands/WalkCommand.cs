using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape walk --model M --data D (--target|--one-hot) [--steps N] [--step-size S] [--seed S] [--out F] [--json F] [--cluster CONFIG]</c>:
/// a random walk on M (tangent step, Gauss–Newton retraction), recording loss, rank and distance. With <c>--cluster</c> the
/// same walk (<see cref="ManifoldWalk.Run"/> on the cluster session) with J factored by the Gram matrix of the shards' factors,
/// and every residual, JV and JᵀW computed on the workers.
/// </summary>
internal sealed class WalkCommand : LandscapeCommand<WalkCommand.Settings, WalkOutput>
{
    /// <summary>
    /// Default retraction tolerance, relative to max(1, max|y|): 1e−10 is about 4.5·10⁵ ε (ε = 2⁻⁵²), far enough
    /// above the float64 floor of max|H| on M (the constructed iris points sit at 2–5·10⁻¹³, a few thousand ε) that
    /// each retraction converges in a few Gauss–Newton steps, and far below any residual a plot could show.
    /// </summary>
    private const double DefaultTolerance = 1e-10;

    private readonly Option<int> _steps = new("--steps") { Description = "number of steps", DefaultValueFactory = _ => 20 };
    private readonly Option<double> _stepSize = new("--step-size") { Description = "length of each tangent step", DefaultValueFactory = _ => 0.05 };
    private readonly Option<string?> _output = new("--out") { Description = "write the model at the end point" };
    private readonly Option<double> _tolerance = new("--tolerance") { Description = "retraction tolerance: max|H| ≤ this·max(1, max|y|)", DefaultValueFactory = _ => DefaultTolerance };

    private WalkCommand()
        : base("walk", "Random walk on M: tangent steps in ker J, retracted onto M by Gauss–Newton; the loss stays 0 while the point travels.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json, seedDescription: "seed of the random directions", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_steps, _stepSize, _output, _tolerance);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new WalkCommand().Build(context);

    /// <summary>The settings of <c>walk</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--steps N</c>.</summary>
        public int Steps { get; init; } = 20;

        /// <summary><c>--step-size S</c>: the length of each tangent step.</summary>
        public double StepSize { get; init; } = 0.05;

        /// <summary><c>--out F</c>: where to write the end point, if anywhere.</summary>
        public string? Out { get; init; }

        /// <summary><c>--tolerance</c>: the retraction's, relative to max(1, max|y|).</summary>
        public double Tolerance { get; init; } = DefaultTolerance;
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<WalkOutput> JsonType => LandscapeJsonContext.Default.WalkOutput;

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Steps < 1 || !(settings.StepSize > 0) || !double.IsFinite(settings.StepSize))
        {
            throw new UsageException("--steps must be ≥ 1 and --step-size a positive number");
        }
        if (!(settings.Tolerance > 0) || !double.IsFinite(settings.Tolerance))
        {
            throw new UsageException($"--tolerance: {settings.Tolerance.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }
    }

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Steps = result.GetValue(_steps),
        StepSize = result.GetValue(_stepSize),
        Out = result.GetValue(_output),
        Tolerance = result.GetValue(_tolerance),
    };

    /// <inheritdoc/>
    protected override WalkOutput Execute(CommandRun run, Settings settings)
    {
        var map = run.Problem;
        var options = new WalkOptions(settings.Steps, settings.StepSize, settings.Seed, OnManifoldTest.Threshold(run.Problem, settings.Tolerance));
        // SIGINT/SIGTERM: the walk stops before its next step and the end point so far (on M) is written.
        var walk = run.Progress("walk", limits => ManifoldWalk.Run(map, options, limits));
        var end = map.GetPoint().data<double>().ToArray();
        if (settings.Out is { } path)
        {
            InitCommand.SaveModel(path, new NetworkPoint(run.Point.Network, end));
        }
        return new WalkOutput(map.ParameterCount, map.Constraints, walk, settings.Out, run.Seconds);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, WalkOutput result)
    {
        static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("step", "loss", "max|H|", "rank J", "path length", "‖p − p₀‖", "retraction", "GN steps");
        var steps = result.Walk.Steps;
        foreach (var s in steps)
        {
            table.AddRow(s.Step.ToString(CultureInfo.InvariantCulture), F(s.Loss), F(s.MaxAbsResidual), s.Rank.ToString(CultureInfo.InvariantCulture), F(s.PathLength), F(s.Displacement), F(s.NormalCorrection), s.RetractionSteps.ToString(CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        context.Console.MarkupLine(Markup.Escape($"ℓd = {result.Constraints}, n = {result.N}, dim M = n − rank J = {(steps.Count > 0 ? (result.N - steps[^1].Rank).ToString(CultureInfo.InvariantCulture) : "?")} at the end point; status {result.Walk.Status.ToJsonName()}"));
        if (result.Cluster is { } cluster)
        {
            context.Console.MarkupLine(Markup.Escape($"cluster: {cluster.Describe()}"));
        }
    }

    /// <inheritdoc/>
    protected override bool Interruptible => true;

    /// <inheritdoc/>
    protected override int ExitCode(Settings settings, WalkOutput result) => result.Walk.Status == SolverStatus.Converged ? LandscapeApp.Success : LandscapeApp.Failure;
}

/// <summary>The result of <c>landscape walk</c>, and its JSON: the library's walk (its status and steps) and what the command adds.</summary>
/// <param name="N">Parameters n.</param>
/// <param name="Constraints">ℓd.</param>
/// <param name="Walk">The walk (<see cref="ManifoldWalk.Run"/>), written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="Model">The model file the end point was written to, if any.</param>
/// <param name="Seconds">Wall time of the walk.</param>
internal sealed record WalkOutput(
    int N,
    int Constraints,
    [property: JsonPropertyName(JsonOutput.Inline)] WalkResult Walk,
    string? Model,
    double Seconds) : ClusterReported<WalkOutput>;
