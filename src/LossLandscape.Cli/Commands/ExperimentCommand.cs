using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Engine;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary><c>landscape experiment NAME</c>: the project's reproducible studies; each writes its figures as a table and <c>--json</c>.</summary>
internal static class ExperimentCommand
{
    /// <summary>Builds the command and its experiments.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("experiment", "Run a reproducible study (see docs/).");
        command.Subcommands.Add(TrainedSpectraCommand.Create(context));
        return command;
    }

    /// <summary>The help text of <c>--quick</c>: the settings of <see cref="TrainedSpectraOptions.Quick"/>, as the library describes them.</summary>
    public static string QuickDescription => $"a few-second version for tests: {TrainedSpectraOptions.Quick.Describe()}";
}

/// <summary>
/// <c>landscape experiment trained-spectra [--json F] [--quick]</c>: the Hessian at trained solutions across the
/// transition n &lt; ℓd → n &gt; ℓd (docs/trained-spectra.md). Ctrl-C stops the sweep (exit code 130).
/// </summary>
internal sealed class TrainedSpectraCommand : LandscapeCommand<TrainedSpectraCommand.Settings, TrainedSpectraOutput>
{
    private readonly Option<bool> _quick = new("--quick") { Description = ExperimentCommand.QuickDescription };

    private TrainedSpectraCommand()
        : base("trained-spectra", "Train on digits (one-hot, ℓ = 10) across widths from n < ℓd to n ≫ ℓd; report loss, rank J, inertia, top eigenvalues, outliers, negative eigenvalues.",
            SharedOptions.Json)
        => Add(_quick);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new TrainedSpectraCommand().Build(context);

    /// <summary>The settings of <c>experiment trained-spectra</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--quick</c>: <see cref="TrainedSpectraOptions.Quick"/> instead of <see cref="TrainedSpectraOptions.Standard"/>.</summary>
        public bool Quick { get; init; }
    }

    /// <inheritdoc/>
    protected internal override JsonTypeInfo<TrainedSpectraOutput> JsonType => LandscapeJsonContext.Default.TrainedSpectraOutput;

    /// <inheritdoc/>
    protected override Settings Bind(ParseResult result) => new() { Quick = result.GetValue(_quick) };

    /// <inheritdoc/>
    protected override TrainedSpectraOutput Execute(CommandRun run, Settings settings)
    {
        var options = settings.Quick ? TrainedSpectraOptions.Quick : TrainedSpectraOptions.Standard;
        try
        {
            // Ctrl-C: the sweep stops at its next step; the command then exits with 130.
            var result = run.Progress("trained-spectra", limits => TrainedSpectra.Run(options, limits));
            return new TrainedSpectraOutput("trained-spectra", result, options.Seed, OutlierRule);
        }
        catch (OperationCanceledException)
        {
            return new TrainedSpectraOutput("trained-spectra", new TrainedSpectraResult("", 0, 0, [], run.Seconds, ""), options.Seed, OutlierRule) { Interrupted = true };
        }
    }

    /// <summary>How the outliers are counted, as the JSON states it.</summary>
    internal const string OutlierRule = "k = argmax_{i ≤ 2ℓ} λ_i/λ_{i+1} over the top eigenvalues (λ_{i+1} ≤ τ: infinite gap)";

    private static string F(double v) => v.ToString("G3", CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    protected override void Render(CliContext context, Settings settings, TrainedSpectraOutput run)
    {
        if (run.Interrupted)
        {
            context.Err.WriteLine("landscape: interrupted");
            return;
        }
        var sweep = run.Sweep;
        var table = new Table().Title(Markup.Escape($"Hessian at trained points: {sweep.Data}, d = {sweep.Rows}, ℓ = {sweep.Outputs}, ℓd = {sweep.Constraints}, one {sweep.Activation} layer"));
        table.AddColumns("h", "n", "n/ℓd", "optimizer", "end", "L", "rank J (tol)", "rank on M", "dim M", "inertia +/0/− (τ)", "top λ", "outliers", "|λmin|/λmax", "‖∇²L−2JᵀJ‖", "method", "s");
        foreach (var p in run.Points)
        {
            var h = p.Hessian.Summary;
            // Lanczos rows: how many of the bottom values converged; the negative count is among those.
            string convergedBottom = h.BottomConverged is { } flags ? $" [{flags.Count(c => c)}/{flags.Count} converged]" : "";
            string inertia = h.Positive is { } pos
                ? $"{pos}/{h.Zero}/{h.Negative} ({F(h.Tolerance)})"
                : $"?/?/{(h.NegativeAtLeast ? "≥" : "")}{h.Negative}{convergedBottom} ({F(h.Tolerance)})";
            table.AddRow(
                p.Width.ToString(CultureInfo.InvariantCulture),
                p.N.ToString(CultureInfo.InvariantCulture),
                p.NOverConstraints.ToString("0.00", CultureInfo.InvariantCulture),
                p.Optimizer,
                Markup.Escape($"{p.Status} @{p.Steps}"),
                F(p.FinalLoss),
                Markup.Escape($"{p.Jacobian.Rank}{(p.Jacobian.Decided ? "" : "?")} ({F(p.Jacobian.Tolerance)})"),
                p.OneHotRankOnM.ToString(CultureInfo.InvariantCulture),
                p.ManifoldDimension?.ToString(CultureInfo.InvariantCulture) ?? "–",
                Markup.Escape(inertia),
                string.Join(" ", h.Top.Take(3).Select(F)),
                Markup.Escape($"{h.Outliers} (gap {F(h.OutlierGap)}) vs ℓ = {sweep.Outputs}"),
                F(h.NegativeRatio),
                F(h.ResidualTermNorm),
                h.Method + (h.Status == SolverStatus.Converged ? "" : " (unconverged)"),
                p.Seconds.ToString("0.0", CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        context.Console.WriteLine($"total {sweep.Seconds:0.0} s. rank J: '?' = gap not resolved; rank on M = min(n, (ℓ−1)d + min(h+1, d)), forced by one-hot targets; dim M = n − rank J shown on M only (L ≤ 1e4 × the float64 zero).");
    }

    /// <inheritdoc/>
    protected override int ExitCode(Settings settings, TrainedSpectraOutput result) => result.Interrupted ? TrainCommand.Interrupted : LandscapeApp.Success;
}

/// <summary>The JSON of <c>experiment trained-spectra</c> (the field names the study has always written).</summary>
/// <param name="Experiment">The study's name.</param>
/// <param name="Sweep">The sweep (<see cref="TrainedSpectra.Run"/>; empty when interrupted), written in place (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="Seed">The seed of every run.</param>
/// <param name="OutlierRule">How the outliers are counted.</param>
internal sealed record TrainedSpectraOutput(string Experiment, [property: JsonPropertyName(JsonOutput.Inline)] TrainedSpectraResult Sweep, int Seed, string OutlierRule)
{
    /// <summary>The trained points, as the study writes them.</summary>
    public IReadOnlyList<TrainedSpectraPointOutput> Points => [.. Sweep.Points.Select(p => TrainedSpectraPointOutput.From(p, Sweep.Outputs))];

    /// <summary>Whether Ctrl-C stopped the sweep before it finished (no points then).</summary>
    public bool Interrupted { get; init; }
}

/// <summary>One trained point of the sweep.</summary>
internal sealed record TrainedSpectraPointOutput(
    int Width, int N, double NOverConstraints, string Optimizer, string Status, int Steps, double InitialLoss, double FinalLoss, double MaxAbsResidual,
    bool OnManifold, TrainedSpectraRankOutput Jacobian, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? ManifoldDimension, int OneHotRankOnM,
    TrainedSpectraHessianOutput Hessian, IReadOnlyList<double> LossHistory, double Seconds)
{
    /// <summary>The output of one point; non-finite losses are left out of the history, as before.</summary>
    public static TrainedSpectraPointOutput From(TrainedSpectrumPoint p, int classes) =>
        new(p.Width, p.N, p.N / (double)p.Constraints, p.Training.Optimizer, p.Training.Status.ToJsonName(), p.Training.Steps, p.Training.InitialLoss,
            p.Training.BestLoss, p.MaxAbsResidual, p.OnManifold,
            new TrainedSpectraRankOutput(p.Rank.Rank, p.Rank.Tolerance, p.Rank.Decided, p.Rank.SigmaAbove, p.Rank.SigmaBelow, p.Rank.Basis),
            p.ManifoldDimension, p.OneHotRankOnM, new TrainedSpectraHessianOutput(p.Hessian, classes), p.Training.LossHistory.Where(double.IsFinite).ToArray(), p.Seconds);
}

/// <summary>rank J at a trained point, with its tolerance and gap.</summary>
internal sealed record TrainedSpectraRankOutput(int Rank, double Tolerance, bool Decided, double SigmaAbove, double SigmaBelow, string Basis);

/// <summary>The Hessian summary at a trained point (<see cref="HessianSummary"/>, written in place) and the number of classes ℓ its outliers are set against.</summary>
/// <param name="Summary">The summary (<see cref="JsonOutput.Inline"/>).</param>
/// <param name="Classes">ℓ.</param>
internal sealed record TrainedSpectraHessianOutput([property: JsonPropertyName(JsonOutput.Inline)] HessianSummary Summary, int Classes);
