using System.CommandLine;
using System.Globalization;
using LossLandscape.Engine;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape init --data D (--target|--one-hot) (--hidden 64,64 [--activation A] | --arch SPEC) [--seed S] [--standardize] --out model.json</c>:
/// a randomly initialized MLP, or with <c>--arch</c> a sequential network (<see cref="ArchitectureSpec"/>), sized for the data
/// (He initialization, see <see cref="Mlp.InitialParameters"/> and <see cref="SequentialNetwork.InitialParameters"/>).
/// </summary>
internal sealed class InitCommand : LandscapeCommand<InitCommand.Settings, InitOutput>
{
    /// <summary>The default activation of init, construct and train: smooth and rectified (Definition 3.1), so every theorem applies.</summary>
    internal const string DefaultActivation = "smoolu";

    private readonly Option<bool> _standardize = CommonOptions.Standardize();
    private readonly Option<string> _hidden = new("--hidden") { Description = $"hidden widths, comma-separated, e.g. 64,64; {NoHiddenLayer} for no hidden layer (the linear model f(x) = Wx + b)", DefaultValueFactory = _ => "16" };

    /// <summary><c>--hidden none</c>: an MLP without hidden layers, f(x) = Wx + b.</summary>
    internal const string NoHiddenLayer = "none";
    private readonly Option<string> _activation = new("--activation") { Description = $"one of {string.Join(", ", ActivationRegistry.Names)}", DefaultValueFactory = _ => DefaultActivation };
    private readonly Option<string?> _arch = ArchOption();
    private readonly Option<string> _output = new("--out") { Description = "the model file to write", Required = true };

    private InitCommand()
        : base("init", "Write a randomly initialized MLP (or, with --arch, a layered network such as a CNN) sized for the data (inputs p, outputs ℓ).", SharedOptions.Data | SharedOptions.Seed | SharedOptions.Budget, seedDescription: "seed of the initialization")
        => Add(_standardize, _hidden, _activation, _arch, _output);

    /// <summary>
    /// <c>--arch SPEC</c> of init and train: a <see cref="SequentialNetwork"/>'s layers (<see cref="ArchitectureSpec"/>) instead of
    /// an MLP's <c>--hidden</c> widths.
    /// </summary>
    internal static Option<string?> ArchOption() => new("--arch")
    {
        Description = "a layered network instead of an MLP (instead of --hidden and --activation): comma-separated layers conv:OUT:K[:STRIDE[:PAD]], "
            + "pool:K[:STRIDE] (max), avgpool:K[:STRIDE], bn, flatten, linear:OUT, an activation; a last 'linear' gets ℓ from the data; "
            + "e.g. conv:16:3,relu,pool:2,flatten,linear:64,relu,linear. The input shape is that of the rows of the data",
    };

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new InitCommand().Build(context);

    /// <summary>The settings of <c>init</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--hidden</c>: the hidden widths, comma-separated.</summary>
        public string Hidden { get; init; } = "16";

        /// <summary><c>--activation</c>: the hidden activation's name.</summary>
        public string Activation { get; init; } = DefaultActivation;

        /// <summary><c>--arch</c>: a sequential network's layers (<see cref="ArchitectureSpec"/>), or null for an MLP.</summary>
        public string? Arch { get; init; }

        /// <summary>Whether <c>--hidden</c> or <c>--activation</c> was given (not their defaults): refused with <c>--arch</c>.</summary>
        public bool MlpOptionsGiven { get; init; }

        /// <summary><c>--standardize</c>: store the inputs' scaling in the model.</summary>
        public bool Standardize { get; init; }

        /// <summary><c>--out</c>: the model file to write.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Arch is { } arch)
        {
            ValidateArch(arch, settings.MlpOptionsGiven);
            return;
        }
        ParseWidths(settings.Hidden);
        ParseActivation(settings.Activation);
    }

    /// <summary>Checks <c>--arch</c>'s syntax (its shapes are checked against the data's rows later), and that no MLP option comes with it.</summary>
    internal static void ValidateArch(string arch, bool mlpOptionsGiven)
    {
        if (mlpOptionsGiven)
        {
            throw new UsageException("--arch gives the whole network: --hidden and --activation do not apply with it (activations are layers of the spec)");
        }
        try
        {
            ArchitectureSpec.Parse(arch, 1);
        }
        catch (LandscapeInputException e)
        {
            throw new UsageException($"--arch: {e.Message}");
        }
    }

    /// <summary>
    /// The sequential network of <paramref name="arch"/> on the rows of <paramref name="data"/> (their shape, their ℓ), with its
    /// input scaling if asked; a spec whose layers do not fit the rows is a usage error naming the layer, and a network that does
    /// not fit the budget of <paramref name="limits"/> is refused before anything is allocated (<see cref="SequentialNetwork.RequireFits"/>).
    /// </summary>
    public static SequentialNetwork SequentialFor(Dataset data, string arch, bool standardize, RunLimits limits)
    {
        SequentialNetwork network;
        try
        {
            network = ArchitectureSpec.Build(arch, data.InputShape, data.OutputDim);
        }
        catch (LandscapeInputException e)
        {
            string rows = data.InputShape.Count == 1 ? $"flat rows ({data.InputDim} values)" : $"rows (shape [{string.Join(", ", data.InputShape)}])";
            throw new UsageException($"--arch on the {rows} of {data.Source}: {e.Message}");
        }
        network.RequireFits(data.Count, limits);
        return standardize ? network.WithScaling(InputScaling.Standardize(data)) : network;
    }

    /// <summary>
    /// Parses <c>64,64</c> into widths, and <c>none</c> into no hidden layer (the linear model f(x) = Wx + b); a bad list is a
    /// usage error.
    /// </summary>
    public static int[] ParseWidths(string text)
    {
        if (text.Trim() == NoHiddenLayer)
        {
            return [];
        }
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var widths = new int[parts.Length];
        for (int k = 0; k < parts.Length; k++)
        {
            if (!int.TryParse(parts[k], NumberStyles.Integer, CultureInfo.InvariantCulture, out widths[k]) || widths[k] < 1)
            {
                throw new UsageException($"--hidden: '{parts[k]}' is not a positive width (expected e.g. 64,64, or {NoHiddenLayer} for no hidden layer)");
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
        Arch = result.GetValue(_arch),
        MlpOptionsGiven = result.GetResult(_hidden) is { Implicit: false } || result.GetResult(_activation) is { Implicit: false },
        Standardize = result.GetValue(_standardize),
        Out = result.GetValue(_output)!,
    };

    /// <inheritdoc/>
    protected override InitOutput Execute(CommandRun run, Settings settings)
    {
        var set = run.Data;
        if (settings.Arch is { } arch)
        {
            var network = SequentialFor(run.Rows, arch, settings.Standardize, run.Limits);
            SaveModel(settings.Out, new NetworkPoint(network, network.InitialParameters(settings.Seed)));
            return new InitOutput(settings.Out, network.InputDim, [], network.OutputDim, network.ParameterCount, set.Source, set.Count)
            {
                Architecture = $"[{string.Join(", ", network.InputShape)}] → {network.Spec}",
            };
        }
        var widths = ParseWidths(settings.Hidden);
        var mlp = SizedFor(run.Rows, widths, ParseActivation(settings.Activation), settings.Standardize, run.Limits);
        SaveModel(settings.Out, new NetworkPoint(mlp, mlp.InitialParameters(settings.Seed)));
        return new InitOutput(settings.Out, mlp.InputDim, widths, mlp.OutputDim, mlp.ParameterCount, set.Source, set.Count);
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, InitOutput result) =>
        context.Console.WriteLine(result.Architecture is { } arch
            ? $"wrote {result.Model}: {arch}, p = {result.Inputs}, ℓ = {result.Outputs}, n = {result.N} ({result.Data}, d = {result.D}); landscape info --model {result.Model} lists the layers"
            : $"wrote {result.Model}: p = {result.Inputs}, widths {(result.Widths.Count == 0 ? "none (the linear model f(x) = Wx + b)" : string.Join(",", result.Widths))}, ℓ = {result.Outputs}, n = {result.N} ({result.Data}, d = {result.D})");
}

/// <summary>The result of <c>landscape init</c> (printed; init writes no JSON).</summary>
/// <param name="Model">The model file written.</param>
/// <param name="Inputs">Inputs p.</param>
/// <param name="Widths">Hidden widths (none for a sequential network).</param>
/// <param name="Outputs">Outputs ℓ.</param>
/// <param name="N">Parameters n.</param>
/// <param name="Data">The data source it was sized for.</param>
/// <param name="D">Its rows d.</param>
internal sealed record InitOutput(string Model, int Inputs, IReadOnlyList<int> Widths, int Outputs, int N, string Data, int D)
{
    /// <summary>A sequential network's input shape and layers (<c>--arch</c>), or null for an MLP.</summary>
    public string? Architecture { get; init; }
}
