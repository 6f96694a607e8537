using LossLandscape.Engine;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Data;
using LossLandscape.Problem;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Cli;

/// <summary>
/// The base of a <c>landscape</c> command: typed settings, one validation step, one execution path. Modelled on
/// Spectre.Console.Cli's <c>Command&lt;TSettings&gt;</c> (<c>Validate</c>, then <c>Execute</c>), on top of
/// System.CommandLine 2.0, which parses.
/// </summary>
/// <typeparam name="TSettings">
/// The command's settings: a sealed record deriving from <see cref="LandscapeSettings"/> (which holds the shared
/// options) with one init-only property per option of the command's own.
/// </typeparam>
/// <typeparam name="TResult">
/// The command's result record: everything <see cref="Render"/> prints and, for a command with <c>--json</c>,
/// exactly what the JSON file holds (the serializer writes it; see <see cref="LandscapeJsonContext"/>): a thin envelope in
/// the command's file holding the library's result record (its fields written in place, <see cref="JsonOutput"/>'s
/// <c>$inline</c>) and only what the CLI knows (the data source, the files written, the cluster).
/// </typeparam>
/// <remarks>
/// <para>The execution path, the same for every command (<see cref="Run"/>):</para>
/// <list type="number">
/// <item>System.CommandLine parses; a malformed command line is exit 2 before anything here runs.</item>
/// <item><see cref="Bind"/> reads the command's own options into <typeparamref name="TSettings"/>; the base adds
/// the shared ones (<see cref="SharedOptions"/>).</item>
/// <item>Validation, once, before any work: the shared rules (<c>--target</c> with <c>--one-hot</c>,
/// <c>--batch-size</c> ≥ 1), then <see cref="Validate"/>, which throws <see cref="UsageException"/> with a
/// one-line message naming the option. Whatever can be checked without the model or the data is checked here.</item>
/// <item>The engine is initialised (<see cref="LandscapeApp.Initialize"/>) and a TorchSharp dispose scope opened
/// around the rest, so every tensor made on the way is freed when the command ends.</item>
/// <item><c>--model</c> is loaded (<see cref="ModelFile"/>), then the data (<see cref="DataSettings.Open"/>); with
/// both, the residual map H is built (<see cref="CreateMap"/>). <see cref="CommandRun"/> hands them over.</item>
/// <item><see cref="Execute"/> calls the library (and writes the command's own output files, atomically, through
/// <see cref="AtomicFile"/>) and returns the result record; <see cref="CommandRun.Seconds"/> times the work
/// since the loading ended.</item>
/// <item><see cref="Render"/> prints the result for people; with <c>--json FILE</c> the result record is
/// serialised (<see cref="JsonOutput.Write{T}"/>, through <see cref="JsonType"/>). With <c>--json -</c> the JSON is
/// standard output's only content and everything for people, from the loading on, goes to standard error.</item>
/// <item><see cref="ExitCode"/> turns the result into the exit code (default 0; see <see cref="LandscapeApp"/>).</item>
/// </list>
/// <para>To convert a command (the shape of every command in <c>Commands/</c>; <c>WalkCommand</c> is a small
/// complete example):</para>
/// <code>
/// internal sealed class TraceCommand : LandscapeCommand&lt;TraceCommand.Settings, TraceOutput&gt;
/// {
///     private readonly Option&lt;string&gt; _method = new("--method") { DefaultValueFactory = _ =&gt; "hutch++" };
///
///     private TraceCommand()
///         : base("trace", "…", SharedOptions.Model | SharedOptions.Data | SharedOptions.Json | SharedOptions.Seed, seedDescription: "seed of the probes")
///         =&gt; Add(_method);
///
///     // LandscapeApp keeps calling TraceCommand.Create(context).
///     public static Command Create(CliContext context) =&gt; new TraceCommand().Build(context);
///
///     internal sealed record Settings : LandscapeSettings { public string Method { get; init; } = "hutch++"; }
///
///     protected override Settings Bind(ParseResult result) =&gt; new() { Method = result.GetValue(_method)! };
///
///     public override void Validate(Settings settings) { /* throw new UsageException("--method: …") */ }
///
///     protected override TraceOutput Execute(CommandRun run, Settings settings) =&gt; /* one library call on run.Map */;
///
///     protected override void Render(CliContext context, Settings settings, TraceOutput result) { /* tables */ }
///
///     protected internal override JsonTypeInfo&lt;TraceOutput&gt; JsonType =&gt; LandscapeJsonContext.Default.TraceOutput;
/// }
/// </code>
/// <para>and add <c>[JsonSerializable(typeof(TraceOutput))]</c> to <see cref="LandscapeJsonContext"/>. Keep every
/// JSON field name the command wrote before (independent checks read them; <c>CliJsonTests</c> pins them): a name
/// that is not the property's camelCase gets <c>[JsonPropertyName]</c> on the library's record, a field written only
/// sometimes is a nullable property (the context leaves nulls out unless a property says otherwise). Doubles need nothing: NaN and
/// ±∞ are written as null. Add the command's field names to <c>CliJsonTests</c> before converting it, so that the
/// test fails if the conversion renames one.</para>
/// <para>Variations: a command whose loss is not the squared one overrides <see cref="LossExponent"/>
/// (evaluate's <c>--exponent</c>); a command that reads a second model (train's <c>--init</c>) loads it in
/// <see cref="Execute"/>; a long computation runs inside <see cref="CommandRun.Progress{T}"/>; a command without
/// <c>--json</c> leaves <see cref="JsonType"/> null and its result record is only rendered.</para>
/// <para>Errors: bad input is <see cref="UsageException"/> (from <see cref="Validate"/>), or the library's
/// <see cref="LandscapeInputException"/>, <see cref="DataFormatException"/>, <see cref="ModelFormatException"/>, all
/// exit 2; do not catch anything else, since any other exception is a bug and <see cref="LandscapeApp.Report"/> says so
/// (exit 70).</para>
/// </remarks>
internal abstract class LandscapeCommand<TSettings, TResult>
    where TSettings : LandscapeSettings
    where TResult : class
{
    private readonly Option<string>? _model;
    private readonly Option<string>? _dtype;
    private readonly CommonOptions.DataOptions? _data;
    private readonly Option<int>? _seed;
    private readonly Option<int?>? _batchSize;
    private readonly Option<string?>? _json;
    private readonly Option<double>? _budget;
    private readonly Option<string?>? _cluster;
    private readonly Option<string>? _loss;
    private bool _built;

    /// <summary>Creates the command <paramref name="name"/> with the shared options <paramref name="shared"/>.</summary>
    /// <param name="name">The sub-command, e.g. <c>walk</c>.</param>
    /// <param name="description">One sentence for <c>--help</c>.</param>
    /// <param name="shared">Which shared options the command takes.</param>
    /// <param name="seedDescription">What <c>--seed</c> seeds (with <see cref="SharedOptions.Seed"/>).</param>
    /// <param name="batchSizeDescription">What a batch is (with <see cref="SharedOptions.BatchSize"/>).</param>
    protected LandscapeCommand(string name, string description, SharedOptions shared, string? seedDescription = null, string? batchSizeDescription = null)
    {
        Command = new Command(name, description);
        if (shared.HasFlag(SharedOptions.Model))
        {
            _model = CommonOptions.Model();
            Command.Options.Add(_model);
            _dtype = CommonOptions.Dtype();
        }
        if (shared.HasFlag(SharedOptions.Data))
        {
            _data = new CommonOptions.DataOptions(Command);
        }
        // --seed, --batch-size and --json are added by Build, after the command's own options, so that --help lists
        // the inputs (model, data) first, then what the command does, then the run-wide settings and the output.
        if (shared.HasFlag(SharedOptions.Seed))
        {
            _seed = CommonOptions.Seed(seedDescription ?? "seed of the random draws");
        }
        if (shared.HasFlag(SharedOptions.BatchSize))
        {
            _batchSize = CommonOptions.BatchSize(batchSizeDescription ?? "rows per batch");
        }
        if (shared.HasFlag(SharedOptions.Budget))
        {
            _budget = Commands.CurvatureOptions.Budget();
        }
        if (shared.HasFlag(SharedOptions.Loss) || (shared.HasFlag(SharedOptions.Model) && shared.HasFlag(SharedOptions.Data)))
        {
            _loss = CommonOptions.Loss();
        }
        if (shared.HasFlag(SharedOptions.Cluster))
        {
            _cluster = ClusterOptions.Cluster();
        }
        if (shared.HasFlag(SharedOptions.Json))
        {
            _json = CommonOptions.Json();
        }
    }

    /// <summary>The System.CommandLine command the options are added to.</summary>
    protected Command Command { get; }

    /// <summary>
    /// The serialisation metadata of <typeparamref name="TResult"/> (a property of
    /// <see cref="LandscapeJsonContext.Default"/>); null for a command without <c>--json</c>.
    /// </summary>
    protected internal virtual JsonTypeInfo<TResult>? JsonType => null;

    /// <summary>
    /// Adds the last shared options, wires the execution path to the command and returns it, ready to add to the
    /// root command. Call it once, from the command's static <c>Create</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The command takes <c>--json</c> but has no <see cref="JsonType"/>, or was built twice (bugs).</exception>
    public Command Build(CliContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (_json is not null && JsonType is null)
        {
            throw new InvalidOperationException($"{Command.Name} takes --json but declares no JsonType");
        }
        if (_built)
        {
            throw new InvalidOperationException($"{Command.Name} was built twice");
        }
        _built = true;
        foreach (var option in new Option?[] { _dtype, _loss, _seed, _batchSize, _budget, _cluster, _json })
        {
            if (option is not null)
            {
                Command.Options.Add(option);
            }
        }
        Command.SetAction(result => Run(context, result));
        return Command;
    }

    /// <summary>
    /// The one validation step's command-specific part: throws <see cref="UsageException"/> with a one-line message
    /// naming the option (<c>--steps: 0 is not …</c>). Runs before the engine starts or any file is read.
    /// </summary>
    public virtual void Validate(TSettings settings)
    {
    }

    /// <summary>The settings of a parsed command line: the command's own (<see cref="Bind"/>) and the shared ones.</summary>
    internal TSettings ReadSettings(ParseResult result)
    {
        LandscapeSettings own = Bind(result);
        return (TSettings)(own with
        {
            Model = _model is null ? null : result.GetValue(_model),
            Dtype = _dtype is null ? own.Dtype : result.GetValue(_dtype)!,
            Data = _data?.Bind(result),
            Json = _json is null ? null : result.GetValue(_json),
            Seed = _seed is null ? 0 : result.GetValue(_seed),
            BatchSize = _batchSize is null ? null : result.GetValue(_batchSize),
            BudgetGigabytes = _budget is null ? Commands.CurvatureOptions.DefaultBudgetGigabytes : result.GetValue(_budget),
            Cluster = _cluster is null ? own.Cluster : result.GetValue(_cluster),
            Loss = _loss is null ? own.Loss : result.GetValue(_loss)!,
        });
    }

    /// <summary>Adds the command's own options.</summary>
    protected void Add(params Option[] options)
    {
        foreach (var option in options)
        {
            Command.Options.Add(option);
        }
    }

    /// <summary>Reads the command's own options (the shared ones are filled in by the base; leave them default).</summary>
    protected abstract TSettings Bind(ParseResult result);

    /// <summary>
    /// The work: one library call (or a few, for a command that strings them together) on what <paramref name="run"/>
    /// has loaded, writing the command's own output files; returns the result record. Runs inside the dispose scope.
    /// </summary>
    protected abstract TResult Execute(CommandRun run, TSettings settings);

    /// <summary>Prints <paramref name="result"/> for people (tables on <see cref="CliContext.Console"/>).</summary>
    protected abstract void Render(CliContext context, TSettings settings, TResult result);

    /// <summary>
    /// The files the command reads besides <c>--model</c> and <c>--data</c>, as (option, path); a null path is an absent
    /// option. Every command that reads another file lists it here, so that no output overwrites it.
    /// </summary>
    protected internal virtual IEnumerable<(string Option, string? Path)> InputFiles(TSettings settings) => [];

    /// <summary>
    /// The files the command writes besides <c>--json</c>, as (option, path): each is refused (exit 2) before any work
    /// when it names an input or another output (<see cref="CommonOptions.RequireDistinctOutputs"/>). A directory
    /// output is listed as the files written in it.
    /// </summary>
    protected internal virtual IEnumerable<(string Option, string? Path)> OutputFiles(TSettings settings) => [];

    /// <summary>
    /// Whether the command's work keeps a best point and writes what it has when stopped (training, the walk, the paths), so
    /// that SIGINT and SIGTERM stop that work rather than the process from the moment it starts (before the loading), and
    /// the problem stays usable after a signal (default false: the signals end the process until the work begins
    /// (<see cref="CommandRun.Progress{T}"/>), and then every evaluation of the problem is a check that stops it within one
    /// batch of rows, writing nothing).
    /// </summary>
    protected virtual bool Interruptible => false;

    /// <summary>The exit code of a finished run (default <see cref="LandscapeApp.Success"/>).</summary>
    protected virtual int ExitCode(TSettings settings, TResult result) => LandscapeApp.Success;

    /// <summary>
    /// The residual map H of the model on the data: the loss exponent of <see cref="LossExponent"/>, in batches of
    /// <c>--batch-size</c> rows (default: what the memory budget holds, <see cref="ResidualMap.DefaultBatchSize"/>), stopped
    /// within one batch by <paramref name="cancellation"/>.
    /// </summary>
    private ResidualMap CreateMap(NetworkModel model, IDataSource data, TSettings settings, RunLimits limits, CancellationToken cancellation) =>
        new(model, data, LossOf(settings), settings.BatchSize ?? ResidualMap.DefaultBatchSize(model, data.Count, limits), cancellation);

    /// <summary>
    /// The loss of <c>--loss</c> with the exponent of <see cref="LossExponent"/> (the library's <see cref="LossFunction.Parse"/>:
    /// an exponent with a loss other than squared is refused in one line).
    /// </summary>
    protected LossFunction LossOf(TSettings settings) => LossFunction.Parse(settings.Loss, LossExponent(settings));

    /// <summary>
    /// <c>--cluster</c>, decided here, once, for every command: the problem of <paramref name="map"/> at <paramref name="point"/>
    /// on the cluster's workers (the same loss exponent and batch size), or null for the map in this process. The loading
    /// calls it for <c>--model</c>, <see cref="CommandRun.ProblemAt"/> for a point the command makes itself.
    /// </summary>
    private static ClusterConnection? OpenCluster(CliContext context, TSettings settings, IDataSource data, NetworkPoint point, ResidualMap map, RunLimits limits,
        CancellationToken cancellation) =>
        settings.Cluster is { } clusterFile ? ClusterOptions.Open(context, settings, clusterFile, data.Load(limits), point, map.LossFunction, map.BatchSize, cancellation) : null;

    /// <summary>
    /// The row shape a TorchScript <c>--model</c> is opened for when the command reads no data (info's <c>--input-shape</c>);
    /// default null: with data, the data's shape.
    /// </summary>
    protected virtual IReadOnlyList<long>? ModelInputShape(TSettings settings) => null;

    /// <summary>The exponent a of L = Σ|H_k|^a (default 2, the squared loss; evaluate's <c>--exponent</c> overrides it).</summary>
    protected virtual double LossExponent(TSettings settings) => 2.0;

    /// <summary>
    /// The execution path (see the class remarks). A memory refusal (<see cref="MemoryBudgetExceededException"/>) names the
    /// command's options for the remedies the library gives as data (<see cref="MemoryBudgetExceededException.Remedies"/>:
    /// fewer rows <c>--data</c>, smaller <c>--hidden</c>, fewer <c>--probes</c>, a smaller <c>--grid</c>, another
    /// <c>--method</c>), each where the command takes it, and, for a command with <c>--budget-gb</c>, that option as the way
    /// to raise the budget.
    /// </summary>
    private int Run(CliContext context, ParseResult result)
    {
        try
        {
            return RunChecked(context, result);
        }
        catch (MemoryBudgetExceededException e)
        {
            throw e.WithAlternative(Remedies(e));
        }
    }

    /// <summary>The option each remedy is reduced by, on the command line.</summary>
    private static readonly (BudgetRemedy Remedy, string Option)[] RemedyOptions =
    [
        (BudgetRemedy.Rows, "--data"), (BudgetRemedy.Widths, "--hidden"), (BudgetRemedy.Probes, "--probes"), (BudgetRemedy.Grid, "--grid"), (BudgetRemedy.Method, "--method"),
    ];

    /// <summary>The refusal's alternative with the command's own option names (see <see cref="Run"/>).</summary>
    private string Remedies(MemoryBudgetExceededException e)
    {
        const string LibraryWords = "raise the memory budget";
        string budget = $"raise {Commands.CurvatureOptions.BudgetOptionName}";
        string alternative = _budget is not null ? e.Alternative.Replace(LibraryWords, budget, StringComparison.Ordinal) : e.Alternative;
        var options = RemedyOptions.Where(r => e.Remedies.HasFlag(r.Remedy) && Command.Options.Any(o => o.Name == r.Option)).Select(r => r.Option).ToArray();
        if (options.Length > 0 && !options.All(o => alternative.Contains(o, StringComparison.Ordinal)))
        {
            alternative += $" ({string.Join(", ", options)})";
        }
        if (_budget is not null && !alternative.Contains(Commands.CurvatureOptions.BudgetOptionName, StringComparison.Ordinal))
        {
            alternative += $", or {budget}";
        }
        return alternative;
    }

    private int RunChecked(CliContext context, ParseResult result)
    {
        var settings = ReadSettings(result);
        ValidateShared(settings);
        Validate(settings);
        if (_loss is not null)
        {
            _ = LossOf(settings); // an exponent with a loss other than squared: one line before any work (after the command's own checks)
        }
        // Before any work: no output may name an input or another output (after links), whatever the command.
        bool jsonToStdout = settings.Json == JsonOutput.StandardOutput;
        CommonOptions.RequireDistinctOutputs(
            [("--model", settings.Model), ("--data", CommonOptions.DataFile(settings.Data?.Source)), .. InputFiles(settings)],
            [.. OutputFiles(settings), ("--json", jsonToStdout ? null : settings.Json)]);
        // With --json -, standard output carries the JSON alone: everything for people goes to standard error.
        var stdout = context.Out;
        context = jsonToStdout ? context.WithTablesOnStandardError() : context;

        LandscapeApp.Initialize();
        using var signals = new SignalCancellation(context.Err);
        if (Interruptible)
        {
            signals.Arm(); // a signal while loading stops the work at its first check, with the start as the best point
        }
        using var scope = NewDisposeScope();
        var computeType = CommonOptions.ComputeType(settings.Dtype);
        // A TorchScript module does not record its input's shape: it is opened after the data, for rows of the data's shape.
        bool script = settings.Model is { } modelPath && TorchScriptNetwork.IsTorchScriptFile(modelPath);
        var point = settings.Model is { } path && !script ? CommonOptions.LoadModel(path, null, computeType) : null;
        if (settings.Data is { Source: null })
        {
            // Without a model (init, construct, train) the default data is allowed, and said; with one, --data is required.
            context.Err.WriteLine(CommonOptions.DataOptions.DefaultDataNote);
        }
        // The command's limits: the budget of --budget-gb and the signals' token (RunLimits.Progress is added per stage of work).
        var limits = new RunLimits(settings.MemoryBudgetBytes(), signals.Token);
        var data = settings.Data?.Open(limits);
        using var dataOwner = data as IDisposable; // array files read per batch stay open until the command ends
        if (script)
        {
            point = CommonOptions.LoadModel(settings.Model!, data?.InputShape ?? ModelInputShape(settings), computeType);
            context.Err.WriteLine($"landscape: {settings.Model}: {((TorchScriptNetwork)point.Network).Describe()}");
        }
        // A command without a best point to keep is stopped within one batch of rows of the problem: its evaluations check
        // the signals' token. An interruptible one checks it between its own steps and keeps using the problem after it.
        var problemCancellation = Interruptible ? CancellationToken.None : signals.Token;
        using var model = point?.ToModel();
        using var map = model is not null && data is not null ? CreateMap(model, data, settings, limits, problemCancellation) : null;
        using var cluster = map is not null ? OpenCluster(context, settings, data!, point!, map, limits, problemCancellation) : null;
        IResidualProblem? problem = cluster?.Session ?? (IResidualProblem?)map;
        if (problem is not null)
        {
            FiniteLoss.RequirePoint(problem); // a point whose H or L overflows has no geometry to measure: exit 2, naming what overflowed
        }

        // A point the command makes itself (construct's network) gets its problem by the same two rules, when it asks.
        Func<NetworkModel, NetworkPoint, (ResidualMap, ClusterConnection?)>? open = data is null ? null : (made, at) =>
        {
            var madeMap = CreateMap(made, data, settings, limits, problemCancellation);
            try
            {
                return (madeMap, OpenCluster(context, settings, data, at, madeMap, limits, problemCancellation));
            }
            catch
            {
                madeMap.Dispose();
                throw;
            }
        };
        using var run = new CommandRun(context, settings.Model, point, model, data, problem, signals, limits, cluster, open);
        TResult output;
        try
        {
            output = Execute(run, settings);
        }
        catch (OperationCanceledException) when (signals.ExitCode is { } interrupted)
        {
            // A computation without a best point to keep stopped at a check of the token: nothing is written.
            context.Err.WriteLine($"landscape: interrupted ({(interrupted == SignalCancellation.SigIntExitCode ? "SIGINT" : "SIGTERM")}); stopped before a result, nothing written");
            return interrupted;
        }
        if (run.Cluster is { } connection && output is IClusterReported<TResult> reported)
        {
            output = reported.WithCluster(connection.Output());
        }
        Render(context, settings, output);
        if (JsonType is { } type)
        {
            JsonOutput.Write(settings.Json, output, type, stdout);
        }
        // A caught SIGINT or SIGTERM stopped the work early (its best point and JSON are written): 130 or 143.
        return signals.ExitCode ?? ExitCode(settings, output);
    }

    private void ValidateShared(TSettings settings)
    {
        settings.Data?.Validate();
        _ = CommonOptions.ComputeType(settings.Dtype);
        if (_budget is not null)
        {
            _ = settings.MemoryBudgetBytes(); // refuses 0, negative, NaN and ∞ before any work
        }
        if (settings.BatchSize is < 1)
        {
            throw new UsageException($"--batch-size: {settings.BatchSize} is not a positive number of rows");
        }

    }
}

/// <summary>
/// What the execution path of <see cref="LandscapeCommand{TSettings, TResult}"/> has prepared for
/// <c>Execute</c>: the console, the loaded model and data, the residual map, and a clock. Disposing it releases the
/// problems <see cref="ProblemAt"/> opened.
/// </summary>
internal sealed class CommandRun : IDisposable
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Func<NetworkModel, NetworkPoint, (ResidualMap Map, ClusterConnection? Cluster)>? _open;
    private readonly List<IDisposable> _opened = [];
    private readonly string? _modelPath;
    private readonly NetworkPoint? _point;
    private readonly NetworkModel? _model;
    private readonly IDataSource? _data;
    private Dataset? _rows;
    private readonly IResidualProblem? _map;
    private readonly SignalCancellation _signals;

    /// <summary>Creates the run; the clock starts now, after the loading.</summary>
    /// <param name="context">Where the command writes.</param>
    /// <param name="modelPath">The <c>--model</c> path, or null.</param>
    /// <param name="point">The point read from it, or null.</param>
    /// <param name="model">The model at that point, or null.</param>
    /// <param name="data">The data, or null.</param>
    /// <param name="map">The problem of the model on the data (here or on the cluster), or null.</param>
    /// <param name="signals">The signal handling.</param>
    /// <param name="limits">The command's limits: the budget of <c>--budget-gb</c> and the signals' token.</param>
    /// <param name="cluster">The cluster connection of <paramref name="map"/>, or null.</param>
    /// <param name="open">
    /// The execution path's rule for the problem of a model the command makes (<see cref="ProblemAt"/>): the map on the data
    /// and, with <c>--cluster</c>, its session; null without data.
    /// </param>
    internal CommandRun(CliContext context, string? modelPath, NetworkPoint? point, NetworkModel? model, IDataSource? data, IResidualProblem? map, SignalCancellation signals,
        RunLimits limits, ClusterConnection? cluster = null, Func<NetworkModel, NetworkPoint, (ResidualMap Map, ClusterConnection? Cluster)>? open = null)
    {
        _open = open;
        _signals = signals;
        Limits = limits;
        Cluster = cluster;
        Context = context;
        _modelPath = modelPath;
        _point = point;
        _model = model;
        _data = data;
        _map = map;
    }

    /// <summary>Where the command writes.</summary>
    public CliContext Context { get; }

    /// <summary>The <c>--model</c> path.</summary>
    public string ModelPath => _modelPath ?? throw Undeclared("--model");

    /// <summary>The point read from <c>--model</c>.</summary>
    public NetworkPoint Point => _point ?? throw Undeclared("--model");

    /// <summary>The model at <see cref="Point"/> (one autograd leaf; the execution path disposes it).</summary>
    public NetworkModel Model => _model ?? throw Undeclared("--model");

    /// <summary>The data the data options name: rows read batch by batch (in memory, or from an .npz file per batch).</summary>
    public IDataSource Data => _data ?? throw Undeclared("--data");

    /// <summary>
    /// The data's rows all in memory, for what needs every row at once (a construction, standardisation, a perturbation):
    /// <see cref="Data"/> itself when it is in memory, else its rows read once, priced against the memory budget.
    /// </summary>
    public Dataset Rows => _rows ??= Data.Load(Limits);

    /// <summary>
    /// The problem: <see cref="Model"/> on <see cref="Data"/>, in this process (a <see cref="ResidualMap"/>) or, with
    /// <c>--cluster</c>, on the cluster's workers. Move its point with <see cref="IResidualProblem.SetPoint"/>.
    /// </summary>
    public IResidualProblem Problem => _map ?? throw Undeclared("--model and --data");

    /// <summary>
    /// The cluster connection with <c>--cluster</c>, else null: the one of <see cref="Problem"/>, or of the first problem
    /// <see cref="ProblemAt"/> opened. The execution path reports it in the result (<see cref="IClusterReported{T}"/>).
    /// </summary>
    public ClusterConnection? Cluster { get; private set; }

    /// <summary>
    /// The problem of a point the command made itself (construct's network after the triangular solve) on <see cref="Data"/>,
    /// by the same rules as <see cref="Problem"/>: a <see cref="ResidualMap"/> in this process or, with <c>--cluster</c>, the
    /// same problem on the cluster's workers. The run owns it (disposed with the run) and checks <see cref="Cancellation"/>
    /// at its evaluations.
    /// </summary>
    public IResidualProblem ProblemAt(NetworkPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        var open = _open ?? throw Undeclared("--data");
        var model = point.ToModel();
        _opened.Add(model);
        var (map, cluster) = open(model, point);
        _opened.Add(map);
        IResidualProblem problem = map;
        if (cluster is not null)
        {
            _opened.Add(cluster);
            Cluster ??= cluster;
            problem = cluster.Session;
        }
        return problem; // with the execution path's token for the problem (construct has no best point to keep)
    }

    /// <summary>Releases what <see cref="ProblemAt"/> opened, the last first (a session before its map, a map before its model).</summary>
    public void Dispose()
    {
        for (int i = _opened.Count - 1; i >= 0; i--)
        {
            _opened[i].Dispose();
        }
        _opened.Clear();
    }

    /// <summary>
    /// The command's limits: the memory budget of <c>--budget-gb</c> and the token the first SIGINT or SIGTERM cancels once
    /// the work has begun (<see cref="Progress{T}"/>); no progress sink (<see cref="Progress{T}"/> adds its bar's).
    /// </summary>
    public RunLimits Limits { get; }

    /// <summary>Seconds since the loading ended: the wall time of the command's work so far.</summary>
    public double Seconds => _clock.Elapsed.TotalSeconds;

    /// <summary>
    /// Runs <paramref name="work"/> with a progress bar on a terminal (<see cref="CliContext.WithProgress{T}"/>), handing it
    /// <see cref="Limits"/> with the bar as their progress sink. From now on SIGINT (Ctrl-C) and SIGTERM cancel the limits'
    /// token (<see cref="SignalCancellation"/>) and the process stays alive: a computation with a best point to keep stops
    /// at its next check and returns it (the command writes its outputs), any other throws
    /// <see cref="OperationCanceledException"/> at its next check, or at the next batch of rows of <see cref="Problem"/>
    /// (the command then writes nothing); the exit code is 130 (SIGINT) or 143 (SIGTERM). A computation that reaches no
    /// check within <see cref="SignalCancellation.GraceSeconds"/> is ended with the process, as is one after a second signal.
    /// </summary>
    public T Progress<T>(string description, Func<RunLimits, T> work)
    {
        _signals.Arm();
        using var section = _signals.EnterWork();
        return Context.WithProgress(description, sink => work(Limits with { Progress = sink }));
    }

    private static InvalidOperationException Undeclared(string what) =>
        new($"the command reads {what} but does not declare it in its SharedOptions");
}
