using System.CommandLine;
using System.Globalization;
using LossLandscape.Engine;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape init --data D (--target|--one-hot) --hidden 64,64 [--activation A] [--seed S] [--standardize] --out model.json</c>:
/// a randomly initialized MLP sized for the data (He initialization, see <see cref="Mlp.InitialParameters"/>).
/// </summary>
internal sealed class InitCommand : LandscapeCommand<InitCommand.Settings, InitOutput>
{
    /// <summary>The default activation of init, construct and train: smooth and rectified (Definition 3.1), so every theorem applies.</summary>
    internal const string DefaultActivation = "smoolu";

    private readonly Option<bool> _standardize = CommonOptions.Standardize();
    private readonly Option<string> _hidden = new("--hidden") { Description = "hidden widths, comma-separated, e.g. 64,64", DefaultValueFactory = _ => "16" };
    private readonly Option<string> _activation = new("--activation") { Description = $"one of {string.Join(", ", ActivationRegistry.Names)}", DefaultValueFactory = _ => DefaultActivation };
    private readonly Option<string> _output = new("--out") { Description = "the model file to write", Required = true };

    private InitCommand()
        : base("init", "Write a randomly initialized MLP sized for the data (inputs p, outputs ℓ).", SharedOptions.Data | SharedOptions.Seed | SharedOptions.Budget, seedDescription: "seed of the initialization")
        => Add(_standardize, _hidden, _activation, _output);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new InitCommand().Build(context);

    /// <summary>The settings of <c>init</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--hidden</c>: the hidden widths, comma-separated.</summary>
        public string Hidden { get; init; } = "16";

        /// <summary><c>--activation</c>: the hidden activation's name.</summary>
        public string Activation { get; init; } = DefaultActivation;

        /// <summary><c>--standardize</c>: store the inputs' scaling in the model.</summary>
        public bool Standardize { get; init; }

        /// <summary><c>--out</c>: the model file to write.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        ParseWidths(settings.Hidden);
        ParseActivation(settings.Activation);
    }

    /// <summary>Parses <c>64,64</c> into widths; a bad list is a usage error.</summary>
    public static int[] ParseWidths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var widths = new int[parts.Length];
        for (int k = 0; k < parts.Length; k++)
        {
            if (!int.TryParse(parts[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out widths[k]) || widths[k] < 1)
            {
                throw new UsageException($"--hidden: '{parts[k]}' is not a positive width (expected e.g. 64,64)");
            }
        }
        return widths;
    }

    /// <summary>Looks an activation up; an unknown name is a usage error listing the known ones.</summary>
    public static Activation ParseActivation(string name) =>
        ActivationRegistry.TryGet(name, out var a) ? a! : throw new UsageException($"--activation: unknown activation '{name}'; expected one of: {string.Join(", ", ActivationRegistry.Names)}");

    /// <summary>
    /// An MLP of the given widths sized for <paramref name="data"/>, with its input scaling if asked; refused (exit 2) before
    /// anything is allocated when it does not fit the budget of <paramref name="limits"/> (<see cref="Mlp.RequireFits"/>).
    /// </summary>
    public static Mlp SizedFor(Dataset data, IReadOnlyList<int> widths, Activation activation, bool standardize, RunLimits limits)
    {
        Mlp.RequireFits(data.InputDim, widths, data.OutputDim, data.Count, limits);
        var mlp = new Mlp(data.InputDim, widths.Select(w => new HiddenLayer(w, activation)).ToArray(), data.OutputDim);
        return standardize ? mlp.WithScaling(InputScaling.Standardize(data)) : mlp;
    }

    /// <summary>Saves a model atomically (<see cref="AtomicFile"/>); a file that cannot be written is a usage error.</summary>
    public static void SaveModel(string path, NetworkPoint point) => ModelFile.Save(path, point);

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Hidden = result.GetValue(_hidden)!,
        Activation = result.GetValue(_activation)!,
        Standardize = result.GetValue(_standardize),
        Out = result.GetValue(_output)!,
    };

    /// <inheritdoc/>
    protected override InitOutput Execute(CommandRun run, Settings settings)
    {
        var set = run.Data;
        var widths = ParseWidths(settings.Hidden);
        var mlp = SizedFor(run.Rows, widths, ParseActivation(settings.Activation), settings.Standardize, run.Limits);
        SaveModel(settings.Out, new NetworkPoint(mlp, mlp.InitialParameters(settings.Seed)));
        return new InitOutput(settings.Out, mlp.InputDim, widths, mlp.OutputDim, mlp.ParameterCount, set.Source, set.Count);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, InitOutput result) =>
        context.Console.WriteLine($"wrote {result.Model}: p = {result.Inputs}, widths {string.Join(",", result.Widths)}, ℓ = {result.Outputs}, n = {result.N} ({result.Data}, d = {result.D})");
}

/// <summary>The result of <c>landscape init</c> (printed; init writes no JSON).</summary>
/// <param name="Model">The model file written.</param>
/// <param name="Inputs">Inputs p.</param>
/// <param name="Widths">Hidden widths.</param>
/// <param name="Outputs">Outputs ℓ.</param>
/// <param name="N">Parameters n.</param>
/// <param name="Data">The data source it was sized for.</param>
/// <param name="D">Its rows d.</param>
internal sealed record InitOutput(string Model, int Inputs, IReadOnlyList<int> Widths, int Outputs, int N, string Data, int D);
