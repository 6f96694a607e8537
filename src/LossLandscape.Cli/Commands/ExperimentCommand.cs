using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Engine;
using LossLandscape.Reports;
using LossLandscape.Training;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary><c>landscape experiment NAME</c>: the project's reproducible studies; each writes its figures as a table and <c>--json</c>.</summary>
internal static class ExperimentCommand
{
    /// <summary>Builds the command and its experiments.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("experiment", "Run a reproducible study (see docs/).");
        command.Subcommands.Add(TrainedSpectraCommand(context));
        return command;
    }

    /// <summary>
    /// <c>landscape experiment trained-spectra [--json F] [--quick]</c>: the Hessian at trained solutions across the
    /// transition n &lt; ℓd → n &gt; ℓd (docs/trained-spectra.md).
    /// </summary>
    public static Command TrainedSpectraCommand(CliContext context)
    {
        var command = new Command("trained-spectra", "Train on digits (one-hot, ℓ = 10) across widths from n < ℓd to n ≫ ℓd; report loss, rank J, inertia, top eigenvalues, outliers, negative eigenvalues.");
        var quick = new Option<bool>("--quick") { Description = QuickDescription };
        var json = CommonOptions.Json();
        command.Options.Add(quick);
        command.Options.Add(json);
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var options = result.GetValue(quick) ? TrainedSpectraOptions.Quick : TrainedSpectraOptions.Standard;
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            System.Console.CancelKeyPress += onCancel;
            TrainedSpectraResult run;
            try
            {
                run = context.WithProgress("trained-spectra", progress => TrainedSpectra.Run(options, progress, cancel.Token));
            }
            catch (OperationCanceledException)
            {
                context.Err.WriteLine("landscape: interrupted");
                return TrainCommand.Interrupted;
            }
            finally
            {
                System.Console.CancelKeyPress -= onCancel;
            }
            Render(context, run);
            JsonOutput.Write(result.GetValue(json), w => Write(w, run, options));
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>The help text of <c>--quick</c>: the settings of <see cref="TrainedSpectraOptions.Quick"/>, as the library describes them.</summary>
    public static string QuickDescription => $"a few-second version for tests: {TrainedSpectraOptions.Quick.Describe()}";

    private static string F(double v) => v.ToString("G3", CultureInfo.InvariantCulture);

    private static void Render(CliContext context, TrainedSpectraResult run)
    {
        int m = run.Constraints;
        var table = new Table().Title(Markup.Escape($"Hessian at trained points: {run.Data}, d = {run.Rows}, ℓ = {run.Outputs}, ℓd = {m}, one {run.Activation} layer"));
        table.AddColumns("h", "n", "n/ℓd", "optimizer", "end", "L", "rank J (tol)", "rank on M", "dim M", "inertia +/0/− (τ)", "top λ", "outliers", "|λmin|/λmax", "‖∇²L−2JᵀJ‖", "method", "s");
        foreach (var p in run.Points)
        {
            var h = p.Hessian;
            string inertia = h.Positive is { } pos
                ? $"{pos}/{h.Zero}/{h.Negative} ({F(h.Tolerance)})"
                : $"?/?/{(h.NegativeAtLeast ? "≥" : "")}{h.Negative} ({F(h.Tolerance)})";
            table.AddRow(
                p.Width.ToString(CultureInfo.InvariantCulture),
                p.N.ToString(CultureInfo.InvariantCulture),
                (p.N / (double)m).ToString("0.00", CultureInfo.InvariantCulture),
                p.Training.Optimizer,
                Markup.Escape($"{TrainCommand.StatusName(p.Training.Status)} @{p.Training.Steps}"),
                F(p.Training.BestLoss),
                Markup.Escape($"{p.Rank.Rank}{(p.Rank.Decided ? "" : "?")} ({F(p.Rank.Tolerance)})"),
                p.OneHotRankOnM.ToString(CultureInfo.InvariantCulture),
                p.OnManifold ? p.ManifoldDimension.ToString(CultureInfo.InvariantCulture) : "–",
                Markup.Escape(inertia),
                string.Join(" ", h.Top.Take(3).Select(F)),
                Markup.Escape($"{h.Outliers} (gap {F(h.OutlierGap)}) vs ℓ = {run.Outputs}"),
                F(h.NegativeRatio),
                F(h.ResidualTermNorm),
                h.Method + (h.Status == SolverStatus.Converged ? "" : " (unconverged)"),
                p.Seconds.ToString("0.0", CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        context.Console.WriteLine($"total {run.Seconds:0.0} s. rank J: '?' = gap not resolved; rank on M = min(n, (ℓ−1)d + min(h+1, d)), forced by one-hot targets; dim M = n − rank J shown on M only (L ≤ 1e4 × the float64 zero).");
    }

    private static void Write(Utf8JsonWriter w, TrainedSpectraResult run, TrainedSpectraOptions options)
    {
        w.WriteString("experiment", "trained-spectra");
        w.WriteString("data", run.Data);
        w.WriteNumber("d", run.Rows);
        w.WriteNumber("outputs", run.Outputs);
        w.WriteNumber("constraints", run.Constraints);
        w.WriteString("activation", run.Activation);
        w.WriteNumber("seed", options.Seed);
        w.WriteString("outlierRule", "k = argmax_{i ≤ 2ℓ} λ_i/λ_{i+1} over the top eigenvalues (λ_{i+1} ≤ τ: infinite gap)");
        w.WriteNumber("seconds", run.Seconds);
        w.WriteStartArray("points");
        foreach (var p in run.Points)
        {
            var h = p.Hessian;
            w.WriteStartObject();
            w.WriteNumber("width", p.Width);
            w.WriteNumber("n", p.N);
            w.WriteNumber("nOverConstraints", p.N / (double)p.Constraints);
            w.WriteString("optimizer", p.Training.Optimizer);
            w.WriteString("status", TrainCommand.StatusName(p.Training.Status));
            w.WriteNumber("steps", p.Training.Steps);
            w.WriteNumber("initialLoss", p.Training.InitialLoss);
            w.WriteNumber("finalLoss", p.Training.BestLoss);
            w.WriteNumber("maxAbsResidual", p.MaxAbsResidual);
            w.WriteBoolean("onManifold", p.OnManifold);
            w.WriteStartObject("jacobian");
            w.WriteNumber("rank", p.Rank.Rank);
            w.WriteNumber("tolerance", p.Rank.Tolerance);
            w.WriteBoolean("decided", p.Rank.Decided);
            w.WriteNumber("sigmaAbove", p.Rank.SigmaAbove);
            w.WriteNumber("sigmaBelow", p.Rank.SigmaBelow);
            w.WriteString("basis", p.Rank.Basis);
            w.WriteEndObject();
            w.WriteNumber("manifoldDimension", p.ManifoldDimension);
            w.WriteNumber("oneHotRankOnM", p.OneHotRankOnM);
            w.WriteStartObject("hessian");
            w.WriteString("method", h.Method);
            w.WriteString("status", h.Status.ToJsonName());
            w.WriteNumber("tolerance", h.Tolerance);
            WriteCount(w, "positive", h.Positive);
            WriteCount(w, "zero", h.Zero);
            w.WriteNumber("negative", h.Negative);
            w.WriteBoolean("negativeIsLowerBound", h.NegativeAtLeast);
            w.WriteNumber("residualTermNorm", h.ResidualTermNorm);
            WriteCount(w, "zeroWithinResidualTerm", h.ZeroWithinResidualTerm);
            w.WriteNumber("negativeBeyondResidualTerm", h.NegativeBeyondResidualTerm);
            w.WriteNumber("outliers", h.Outliers);
            w.WriteNumber("outlierGap", double.IsFinite(h.OutlierGap) ? h.OutlierGap : double.MaxValue);
            w.WriteNumber("classes", run.Outputs);
            w.WriteNumber("negativeRatio", h.NegativeRatio);
            w.WriteNumber("hessianVectorProducts", h.Applications);
            Array("top", h.Top);
            Array("bottom", h.Bottom);
            w.WriteEndObject();
            Array("lossHistory", p.Training.LossHistory.Where(double.IsFinite).ToArray());
            w.WriteNumber("seconds", p.Seconds);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        void Array(string name, IEnumerable<double> values)
        {
            w.WriteStartArray(name);
            foreach (var v in values)
            {
                w.WriteNumberValue(v);
            }
            w.WriteEndArray();
        }
    }

    private static void WriteCount(Utf8JsonWriter w, string name, int? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
