using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Problem;
using LossLandscape.Training;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape train --data D (--target|--one-hot) [--dedupe] [--standardize] (--hidden 64,64 --activation A | --arch SPEC)
/// --optimizer gd|sgd|adam|lbfgs|gauss-newton --steps N --seed S [--lr η] [--batch-size B] [--loss-every K] --out model.json [--json F]</c>:
/// trains an MLP (or with <c>--arch</c> a sequential network, <see cref="ArchitectureSpec"/>) from a random initialization (or <c>--init M</c>) and writes the best point; Ctrl-C stops the run and
/// still writes the best model so far.
/// </summary>
internal sealed class TrainCommand : LandscapeCommand<TrainCommand.Settings, TrainOutput>
{
    /// <summary>The optimizer names <c>--optimizer</c> accepts.</summary>
    public static IReadOnlyList<string> OptimizerNames => OptimizerChoice.Names;

    /// <summary>Exit code of a run interrupted by Ctrl-C (128 + SIGINT); the best model so far is written.</summary>
    public const int Interrupted = 130;

    /// <summary>Default widths of train: one hidden layer of 64.</summary>
    private const string DefaultHidden = "64";


    /// <summary>Default step budget.</summary>
    private const int DefaultSteps = 100;




    private readonly Option<bool> _standardize = CommonOptions.Standardize();
    private readonly Option<string> _hidden = new("--hidden") { Description = $"hidden widths, comma-separated, e.g. 64,64; {InitCommand.NoHiddenLayer} for no hidden layer", DefaultValueFactory = _ => DefaultHidden };
    private readonly Option<string> _activation = new("--activation") { Description = "the hidden activation (see landscape init --help)", DefaultValueFactory = _ => InitCommand.DefaultActivation };
    private readonly Option<string?> _arch = InitCommand.ArchOption();
    private readonly Option<string> _optimizer = new("--optimizer") { Description = string.Join(" | ", OptimizerChoice.Names), DefaultValueFactory = _ => OptimizerChoice.DefaultName };
    private readonly Option<int> _steps = new("--steps") { Description = "the most optimizer steps (sgd: mini-batches; lbfgs: iterations)", DefaultValueFactory = _ => DefaultSteps };
    private readonly Option<double?> _lr = new("--lr") { Description = FormattableString.Invariant($"learning rate (gd: default 1/λmax(∇²L) at the start; sgd: (1 − μ)/λmax; adam: default {new AdamOptions().LearningRate:G})") };
    private readonly Option<double?> _momentum = new("--momentum") { Description = FormattableString.Invariant($"sgd momentum μ (default {new SgdOptions().Momentum:G})") };
    private readonly Option<double?> _targetLoss = new("--target-loss") { Description = "stop once L ≤ this (default: the float64 zero ℓd·(10ε·max(1,|y|))²)" };
    private readonly Option<int?> _lossEvery = new("--loss-every") { Description = "evaluate L over all rows every K steps and after the last (default: every step for gd, lbfgs, gauss-newton and full-batch adam; once an epoch, ⌈d/B⌉ steps, for sgd and mini-batch adam, with the running mini-batch loss shown between)" };
    private readonly Option<string?> _init = new("--init") { Description = "start from this model file instead of a random initialization (--hidden, --activation, --standardize are then taken from it)" };
    private readonly Option<string> _output = new("--out") { Description = "the model file to write (the best point)", Required = true };

    private TrainCommand()
        : base("train", "Train an MLP, or with --arch a layered network such as a CNN (gd, sgd, adam, lbfgs, gauss-newton), and write the best point; Ctrl-C writes the best model so far.",
            SharedOptions.Data | SharedOptions.Loss | SharedOptions.Seed | SharedOptions.BatchSize | SharedOptions.Budget | SharedOptions.Cluster | SharedOptions.Json,
            seedDescription: "seed of the initialization and of the shuffling",
            batchSizeDescription: $"rows per mini-batch (sgd: default {new SgdOptions().BatchSize}; adam: default all rows)")
        => Add(_standardize, _hidden, _activation, _arch, _optimizer, _steps, _lr, _momentum, _targetLoss, _lossEvery, _init, _output);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new TrainCommand().Build(context);

    /// <summary>The settings of <c>train</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--standardize</c>.</summary>
        public bool Standardize { get; init; }

        /// <summary><c>--hidden</c>: widths, comma-separated (ignored with <see cref="Init"/>).</summary>
        public string Hidden { get; init; } = DefaultHidden;

        /// <summary><c>--activation</c> (ignored with <see cref="Init"/>).</summary>
        public string Activation { get; init; } = InitCommand.DefaultActivation;

        /// <summary><c>--arch</c>: a sequential network's layers instead of an MLP (refused with <see cref="Init"/>).</summary>
        public string? Arch { get; init; }

        /// <summary>Whether <c>--hidden</c> or <c>--activation</c> was given (not their defaults): refused with <c>--arch</c>.</summary>
        public bool MlpOptionsGiven { get; init; }

        /// <summary><c>--optimizer</c>: one of <see cref="OptimizerNames"/>.</summary>
        public string Optimizer { get; init; } = OptimizerChoice.DefaultName;

        /// <summary><c>--steps</c>: the budget N.</summary>
        public int Steps { get; init; } = DefaultSteps;

        /// <summary><c>--lr</c>, or null for the optimizer's default.</summary>
        public double? LearningRate { get; init; }

        /// <summary><c>--momentum</c> (sgd), or null for the default.</summary>
        public double? Momentum { get; init; }

        /// <summary><c>--target-loss</c>, or null for <see cref="Trainer.RoundingFloor(LossLandscape.Problem.IResidualProblem)"/>.</summary>
        public double? TargetLoss { get; init; }

        /// <summary><c>--loss-every K</c>, or null for <see cref="Trainer.DefaultLossEvery"/>.</summary>
        public int? LossEvery { get; init; }

        /// <summary><c>--init</c>: a model file to start from.</summary>
        public string? Init { get; init; }

        /// <summary><c>--out</c>: the model file to write.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<TrainOutput> JsonType => LandscapeJsonContext.Default.TrainOutput;

    /// <inheritdoc/>
    public override void Validate(Settings settings)
    {
        if (settings.Steps < 0)
        {
            throw new UsageException($"--steps: {settings.Steps} is negative");
        }
        Options(settings.Optimizer, () => { Choice(settings).Validate(); return 0; });
        if (settings.TargetLoss is { } t && !(t >= 0))
        {
            throw new UsageException($"--target-loss: {t.ToString(CultureInfo.InvariantCulture)} is not a number ≥ 0");
        }
        if (settings.LossEvery is < 1)
        {
            throw new UsageException($"--loss-every: {settings.LossEvery} is not a positive number of steps");
        }
        if (settings.Arch is { } arch)
        {
            if (settings.Init is not null)
            {
                throw new UsageException("--arch and --init both give the network: use one");
            }
            InitCommand.ValidateArch(arch, settings.MlpOptionsGiven);
        }
        else if (settings.Init is null)
        {
            InitCommand.ParseWidths(settings.Hidden);
            InitCommand.ParseActivation(settings.Activation);
        }
    }

    /// <summary>The library's optimizer choice for the command line's options (<see cref="OptimizerChoice"/>).</summary>
    private static OptimizerChoice Choice(Settings settings) =>
        new(settings.Optimizer, settings.LearningRate, settings.BatchSize, settings.Momentum, settings.Seed);

    /// <summary>
    /// Validates the choice in the library and names the option of a refused setting:
    /// <c>--optimizer</c>, <c>--lr</c>, <c>--batch-size</c> or <c>--momentum</c>.
    /// </summary>
    private static T Options<T>(string name, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (OptimizerChoiceException e)
        {
            string option = e.Setting switch
            {
                OptimizerSetting.Name => "--optimizer",
                OptimizerSetting.LearningRate => "--lr",
                OptimizerSetting.BatchSize => "--batch-size",
                _ => "--momentum",
            };
            throw new UsageException(e.NotApplicable ? $"{option} does not apply to --optimizer {name}" : $"{option}: {e.Message}");
        }
    }

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> InputFiles(Settings settings) => [("--init", settings.Init)];

    /// <inheritdoc/>
    protected internal override IEnumerable<(string Option, string? Path)> OutputFiles(Settings settings) => [("--out", settings.Out)];

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new()
    {
        Standardize = result.GetValue(_standardize),
        Hidden = result.GetValue(_hidden)!,
        Activation = result.GetValue(_activation)!,
        Arch = result.GetValue(_arch),
        MlpOptionsGiven = result.GetResult(_hidden) is { Implicit: false } || result.GetResult(_activation) is { Implicit: false },
        Optimizer = result.GetValue(_optimizer)!,
        Steps = result.GetValue(_steps),
        LearningRate = result.GetValue(_lr),
        Momentum = result.GetValue(_momentum),
        TargetLoss = result.GetValue(_targetLoss),
        LossEvery = result.GetValue(_lossEvery),
        Init = result.GetValue(_init),
        Out = result.GetValue(_output)!,
    };

    /// <inheritdoc/>
    protected override TrainOutput Execute(CommandRun run, Settings settings)
    {
        var set = run.Data;
        using var opt = Options(settings.Optimizer, () => Choice(settings).Create());
        NetworkPoint start;
        if (settings.Init is { } initPath)
        {
            start = CommonOptions.LoadModel(initPath, set.InputShape); // a TorchScript module takes rows of the data's shape
        }
        else if (settings.Arch is { } arch)
        {
            var network = InitCommand.SequentialFor(run.Rows, arch, settings.Standardize, run.Limits);
            start = new NetworkPoint(network, network.InitialParameters(settings.Seed));
        }
        else
        {
            var mlp = InitCommand.SizedFor(run.Rows, InitCommand.ParseWidths(settings.Hidden), InitCommand.ParseActivation(settings.Activation), settings.Standardize, run.Limits);
            start = new NetworkPoint(mlp, mlp.InitialParameters(settings.Seed));
        }
        using var model = start.ToModel();
        using var map = new ResidualMap(model, set, LossOf(settings));
        // --cluster: the same optimizer on the session, every sum over the data (and every mini-batch's rows) on the workers.
        using var cluster = settings.Cluster is { } clusterFile ? ClusterOptions.Open(run.Context, settings, clusterFile, run.Rows, start, map.LossFunction) : null;
        IResidualProblem problem = cluster?.Session ?? (IResidualProblem)map;
        string where = cluster is null ? "" : $" on {cluster.Session.Config.Shards} shards";
        // Ctrl-C: the trainer stops at the next step and the best point is written.
        var training = run.Progress($"train ({settings.Optimizer}{where})", limits =>
            Trainer.Run(problem, opt, new TrainingOptions(settings.Steps, settings.TargetLoss, settings.LossEvery), limits));
        if (cluster is not null)
        {
            training = training with { Settings = $"{training.Settings} (on the cluster: sums over the data on {cluster.Session.Config.Shards} shards)" };
        }
        InitCommand.SaveModel(settings.Out, new NetworkPoint(start.Network, training.BestParameters));
        var output = new TrainOutput(settings.Out, set.Source, problem.ParameterCount, set.Count, set.OutputDim, problem.Constraints, set.InputDim, training);
        return cluster is null ? output : output.WithCluster(cluster.Output());
    }

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, TrainOutput result)
    {
        // A diverged run's last loss overflowed: said in words, never printed as a number (the best point is what was written).
        static string F(double v) => double.IsFinite(v) ? v.ToString("G4", CultureInfo.InvariantCulture) : "overflow (not finite)";
        var table = new Table().AddColumns("quantity", "value");
        void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
        var run = result.Training;
        Row("data", $"{result.Data}: d = {result.D}, p = {result.Inputs}, ℓ = {result.Outputs}, ℓd = {result.Constraints}");
        Row("parameters n", $"{result.N} ({(result.N > result.Constraints ? "n > ℓd: M is generically an (n − ℓd)-manifold" : "n ≤ ℓd: generically no zero-loss point")})");
        Row("optimizer", run.Settings);
        Row("status", $"{run.Status.ToJsonName()} after {run.Steps} steps{(run.Note is null ? "" : $" ({run.Note})")}");
        Row("loss L", $"{F(run.InitialLoss)} → {F(run.FinalLoss)}; best {F(run.BestLoss)} at step {run.BestStep} (target {F(run.TargetLoss)})");
        Row("evaluated", run.LossEvery == 1 ? "L over all rows after every step" : $"L over all rows every {run.LossEvery} steps and after the last ({run.LossSteps.Count} values)");
        Row("time", string.Create(CultureInfo.InvariantCulture, $"{run.Seconds:0.00} s, {run.Evaluations} evaluations"));
        Row("wrote", $"{result.Model} (the best point)");
        context.Console.Write(table);
        if (result.Interrupted)
        {
            context.Err.WriteLine($"landscape: interrupted after {run.Steps} steps; wrote the best point (L = {F(run.BestLoss)}) to {result.Model}");
        }
    }

    /// <inheritdoc/>
    protected override bool Interruptible => true;

    /// <inheritdoc/>
    protected override int ExitCode(Settings settings, TrainOutput result) => result.Interrupted ? Interrupted : LandscapeApp.Success;
}

/// <summary>The result of <c>landscape train</c>, and its JSON: the run (<see cref="TrainingResult"/>) and the data it ran on.</summary>
/// <param name="Model">The model file written (the best point).</param>
/// <param name="Data">The data source.</param>
/// <param name="N">Parameters n.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">Targets per row ℓ.</param>
/// <param name="Constraints">ℓd.</param>
/// <param name="Inputs">Inputs per row p.</param>
/// <param name="Training">The run (<see cref="Trainer.Run"/>), written in place (<see cref="JsonOutput.Inline"/>).</param>
internal sealed record TrainOutput(string Model, string Data, int N, int D, int Outputs, int Constraints, int Inputs,
    [property: JsonPropertyName(JsonOutput.Inline)] TrainingResult Training) : ClusterReported<TrainOutput>
{
    /// <summary>Whether Ctrl-C ended the run (exit code <see cref="TrainCommand.Interrupted"/>).</summary>
    [JsonIgnore]
    public bool Interrupted => Training.Status == SolverStatus.Cancelled;
}
