using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Paths;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape slice --model M --data D (--target|--one-hot) --directions random|filter|tangent|normal|eigen[,KIND] [--dims 1|2] [--grid 51] [--range 1.0] --out FILE.png|.svg [--json F]</c>.
/// </summary>
internal sealed class SliceCommand : LandscapeCommand<SliceCommand.Settings, SliceOutput>
{
    private readonly Option<string> _directions = new("--directions") { Description = "random | filter | tangent | normal | eigen, or two of them comma-separated (e.g. tangent,normal)", DefaultValueFactory = _ => "random" };
    private readonly Option<int> _dims = new("--dims") { Description = "1 or 2 (with one kind, 2 uses two orthogonal directions of that kind)", DefaultValueFactory = _ => 2 };
    private readonly Option<int> _grid = new("--grid") { Description = "points per axis", DefaultValueFactory = _ => 51 };
    private readonly Option<double> _range = new("--range") { Description = "coordinates run over [−range, range]", DefaultValueFactory = _ => 1.0 };
    private readonly Option<bool> _ignoreBias = new("--ignore-bias") { Description = "filter directions: zero on biases instead of normalizing them with their unit" };
    private readonly Option<string> _output = new("--out") { Description = "the figure, .png or .svg", Required = true };

    private SliceCommand()
        : base("slice", "1D and 2D slices of L around the model's point: random, filter-normalized (Li et al. 2018), tangent or normal to M, Hessian eigenvectors.",
            SharedOptions.Model | SharedOptions.Data | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json, seedDescription: "seed of the random directions", batchSizeDescription: CurvatureOptions.BatchSizeDescription)
        => Add(_directions, _dims, _grid, _range, _ignoreBias, _output);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new SliceCommand().Build(context);

    /// <summary>The settings of <c>slice</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--directions</c>: one kind or two, comma-separated.</summary>
        public string Directions { get; init; } = "random";

        /// <summary><c>--dims</c>: 1 or 2.</summary>
        public int Dims { get; init; } = 2;

        /// <summary><c>--grid</c>: points per axis.</summary>
        public int Grid { get; init; } = 51;

        /// <summary><c>--range</c>: coordinates run over [−range, range].</summary>
        public double Range { get; init; } = 1.0;

        /// <summary><c>--ignore-bias</c>.</summary>
        public bool IgnoreBias { get; init; }

        /// <summary><c>--out</c>: the figure, .png or .svg.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<SliceOutput> JsonType => LandscapeJsonContext.Default.SliceOutput;

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        var ext = Path.GetExtension(settings.Out).ToLowerInvariant();
        if (ext is not (".png" or ".svg"))
        {
            throw new UsageException($"--out: '{settings.Out}' must end in .png or .svg");
        }
        ParseKinds(settings.Directions, settings.Dims);
        if (settings.Grid < 2)
        {
            throw new UsageException($"--grid: {settings.Grid} is fewer than 2 points per axis");
        }
        LossSlice.RequireFits(settings.Grid, settings.Dims, settings.Limits());
        if (!(settings.Range > 0) || !double.IsFinite(settings.Range))
        {
            throw new UsageException($"--range: {settings.Range.ToString(CultureInfo.InvariantCulture)} is not a positive number");
        }
    }

    /// <summary>Parses <c>--directions</c> and <c>--dims</c>.</summary>
    public static SliceDirection[] ParseKinds(string text, int dims)
    {
        if (dims is not (1 or 2))
        {
            throw new UsageException($"--dims: {dims} is not 1 or 2");
        }
        var kinds = text.Split(',', StringSplitOptions.TrimEntries).Select(k => k switch
        {
            "random" => SliceDirection.Random,
            "filter" => SliceDirection.Filter,
            "tangent" => SliceDirection.Tangent,
            "normal" => SliceDirection.Normal,
            "eigen" => SliceDirection.Eigen,
            _ => throw new UsageException($"--directions: '{k}' is not one of random, filter, tangent, normal, eigen"),
        }).ToArray();
        return kinds.Length switch
        {
            1 => dims == 1 ? kinds : [kinds[0], kinds[0]],
            2 => kinds,
            _ => throw new UsageException("--directions takes one or two kinds"),
        };
    }

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Directions = result.GetValue(_directions)!,
        Dims = result.GetValue(_dims),
        Grid = result.GetValue(_grid),
        Range = result.GetValue(_range),
        IgnoreBias = result.GetValue(_ignoreBias),
        Out = result.GetValue(_output)!,
    };

    /// <inheritdoc/>
    protected override SliceOutput Execute(CommandRun run, Settings settings)
    {
        var kinds = ParseKinds(settings.Directions, settings.Dims);
        var options = new SliceOptions(kinds, settings.Grid, settings.Range, settings.Seed, settings.IgnoreBias);
        var slice = run.Progress("slice", limits => LossSlice.Compute(run.Problem, options, limits));
        var plot = Plots.Slice(slice, $"{string.Join(" × ", kinds).ToLowerInvariant()} slice of L");
        Plots.Save(plot, settings.Out);
        return new SliceOutput(slice, settings.Out, run.Seconds);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, SliceOutput result)
    {
        var slice = result.Slice;
        double max = slice.Loss.Cast<double>().Max();
        context.Console.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"wrote {result.Figure}: {(slice.Betas.Length == 0 ? "1D" : "2D")} slice, {slice.Alphas.Length} points per axis, L at the point {slice.CenterLoss:G4}, max L on the grid {max:G4}")));
    }
}

/// <summary>The result of <c>landscape slice</c>, and its JSON: the slice (<see cref="SliceResult"/>, the loss as one row per α) and the figure.</summary>
/// <param name="Slice">The slice (<see cref="LossSlice.Compute"/>), written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="Figure">The figure written.</param>
/// <param name="Seconds">Wall time of the slice.</param>
internal sealed record SliceOutput([property: JsonPropertyName(JsonOutput.Inline)] SliceResult Slice, string Figure, double Seconds) : ClusterReported<SliceOutput>;
