using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Construction;
using LossLandscape.Data;
using LossLandscape.Models;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape construct --data D (--target|--one-hot) [--standardize] [--activation A] [--hidden H] [--depth T] [--dedupe] [--cluster FILE] --out model.json [--json F]</c>:
/// zero training error by the construction of Lemma 3.3 / Corollary 3.4 / Remark 4.2, polished onto M. The construction is
/// linear algebra on the data here; with <c>--cluster</c> the polish's H and J (and max|H| before and after it) are the
/// workers' (<see cref="CommandRun.ProblemAt"/>).
/// </summary>
internal sealed class ConstructCommand : LandscapeCommand<ConstructCommand.Settings, ConstructOutput>
{
    private readonly Option<bool> _standardize = CommonOptions.Standardize();
    private readonly Option<string> _activation = new("--activation") { Description = "a rectified activation: smoolu, relu, rectified-tanh, rectified-sigmoid", DefaultValueFactory = _ => InitCommand.DefaultActivation };
    private readonly Option<string?> _hidden = new("--hidden") { Description = "width of the last hidden layer (default d), or all widths h1,...,hT" };
    private readonly Option<int?> _depth = new("--depth") { Description = "number of hidden layers T (default 1)" };
    private readonly Option<string> _output = new("--out") { Description = "the model file to write", Required = true };

    private ConstructCommand()
        : base("construct", "Build a network that fits the data exactly (Lemma 3.3, Corollary 3.4, Remark 4.2) and polish it onto M.",
            SharedOptions.Data | SharedOptions.Loss | SharedOptions.Seed | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json, seedDescription: "seed of the random candidate directions")
        => Add(_standardize, _activation, _hidden, _depth, _output);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new ConstructCommand().Build(context);

    /// <summary>The settings of <c>construct</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--standardize</c>: store the inputs' scaling in the model.</summary>
        public bool Standardize { get; init; }

        /// <summary><c>--activation</c>: a rectified activation (Definition 3.1).</summary>
        public string Activation { get; init; } = InitCommand.DefaultActivation;

        /// <summary><c>--hidden</c>: the last hidden width, or all widths; null: d.</summary>
        public string? Hidden { get; init; }

        /// <summary><c>--depth</c>: hidden layers T; null: as many as <see cref="Hidden"/> lists, else 1.</summary>
        public int? Depth { get; init; }

        /// <summary><c>--out</c>: the model file to write.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<ConstructOutput> JsonType => LandscapeJsonContext.Default.ConstructOutput;

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        InitCommand.ParseActivation(settings.Activation);
        LossOf(settings).RequireResidualSum("the construction of Lemma 3.3 (a point of M)");
        // The widths' rules need no data: d only fills in a width that was not given.
        Widths(settings.Hidden, settings.Depth, d: 1);
    }

    /// <summary>Hidden widths from <c>--hidden</c> and <c>--depth</c>.</summary>
    public static int[] Widths(string? hidden, int? depth, int d)
    {
        if (depth is < 1)
        {
            throw new UsageException($"--depth: {depth} is not a positive number of hidden layers");
        }
        var widths = hidden is null ? [d] : InitCommand.ParseWidths(hidden);
        if (widths.Length == 1)
        {
            return Enumerable.Repeat(widths[0], depth ?? 1).ToArray();
        }
        if (depth is { } t && t != widths.Length)
        {
            throw new UsageException($"--hidden lists {widths.Length} widths but --depth is {t}");
        }
        return widths;
    }

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Standardize = result.GetValue(_standardize),
        Activation = result.GetValue(_activation)!,
        Hidden = result.GetValue(_hidden),
        Depth = result.GetValue(_depth),
        Out = result.GetValue(_output)!,
    };

    /// <inheritdoc/>
    protected override ConstructOutput Execute(CommandRun run, Settings settings)
    {
        var set = run.Rows;
        var sigma = InitCommand.ParseActivation(settings.Activation);
        var widths = Widths(settings.Hidden, settings.Depth, set.Count);
        var options = new ConstructionOptions(sigma, widths, settings.Standardize ? InputScaling.Standardize(set) : null, settings.Seed);
        // The polish's problem is opened at the triangular solve's point: a map here or, with --cluster, on the workers.
        var built = run.Progress("construct", limits => Lemma33Interpolation.Construct(set, options, run.ProblemAt, limits));
        InitCommand.SaveModel(settings.Out, built.Point);
        var net = (Mlp)built.Point.Network;
        return new ConstructOutput(settings.Out, set.Source, set.Count, set.OutputDim, net.ParameterCount, set.InputDim, net.Hidden.Select(h => h.Width).ToArray(),
            net.Hidden[0].Activation.Name, Lemma33Interpolation.CopiesFor(set), built.Diagnostics);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, ConstructOutput result)
    {
        static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var g = result.Diagnostics;
        var table = new Table().AddColumns("quantity", "value");
        table.AddRow("data", Markup.Escape($"{result.Data}: d = {result.D}, p = {result.Inputs}, ℓ = {result.Outputs}"));
        table.AddRow("network", Markup.Escape($"widths {string.Join(",", result.Widths)}, {result.Activation}, n = {result.N}"));
        table.AddRow("direction a", Markup.Escape($"{g.Direction}; min gap / range {F(g.RelativeMinGap)}"));
        table.AddRow("scale", Markup.Escape($"α·min gap = {F(g.ScaledMinGap)}, α·range = {F(g.ScaledRange)}, θ = {F(g.BiasFraction)} ({g.Candidates} candidates)"));
        table.AddRow("conditioning", Markup.Escape($"κ₁(A) = {F(g.TriangularCondition)}, cancellation Σ|A||V|/max(1,|y|) = {F(g.Amplification)}"));
        table.AddRow("residual after triangular solve", F(g.TriangularResidual));
        table.AddRow("Gauss–Newton steps", Markup.Escape($"{g.OutputLayerSteps} on the output layer, {g.FullSteps} full" + (g.FullStepsSkipped is null ? "" : $" ({g.FullStepsSkipped})")));
        table.AddRow("max |f(xᵢ) − yᵢ|", $"{F(g.MaxResidual)} (goal ≤ {F(g.Goal)}: {(g.MeetsGoal ? "[green]met[/]" : "[red]not met[/]")})");
        table.AddRow("wrote", Markup.Escape(result.Model));
        if (result.Cluster is { } cluster)
        {
            table.AddRow("cluster (the polish)", Markup.Escape(cluster.Describe()));
        }
        context.Console.Write(table);
        int copies = result.Copies;
        if (!g.MeetsGoal && copies > 1 && result.Widths.Count == 1 && result.Widths[0] < copies * result.D)
        {
            context.Console.MarkupLine(Markup.Escape($"hint: the residual is at the float64 floor of one projection direction (ε × cancellation); with --hidden {copies * result.D} (= {copies}·d) Remark 4.2's {copies} copies each get their own direction, with far less cancellation"));
        }
    }

    /// <inheritdoc/>
    protected override int ExitCode(Settings settings, ConstructOutput result) => result.Diagnostics.MeetsGoal ? LandscapeApp.Success : LandscapeApp.Failure;
}

/// <summary>The result of <c>landscape construct</c>, and its JSON: the network written and the diagnostics of the construction.</summary>
/// <param name="Model">The model file written.</param>
/// <param name="Data">The data source.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">Targets per row ℓ.</param>
/// <param name="N">Parameters n.</param>
/// <param name="Inputs">Inputs per row p.</param>
/// <param name="Widths">The hidden widths.</param>
/// <param name="Activation">The hidden activation.</param>
/// <param name="Copies">Remark 4.2's copies for ℓ outputs (<see cref="Lemma33Interpolation.CopiesFor"/>).</param>
/// <param name="Diagnostics">What the construction chose and how it came out (<see cref="ConstructionResult.Diagnostics"/>), written in place (<see cref="JsonOutput.Inline"/>).</param>
internal sealed record ConstructOutput(string Model, string Data, int D, int Outputs, int N, int Inputs, IReadOnlyList<int> Widths, string Activation, int Copies,
    [property: JsonPropertyName(JsonOutput.Inline)] ConstructionDiagnostics Diagnostics) : ClusterReported<ConstructOutput>;
