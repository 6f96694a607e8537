using LossLandscape.Engine;
using System.CommandLine;
using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Training;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape train --data D (--target|--one-hot) [--dedupe] [--standardize] --hidden 64,64 --activation A
/// --optimizer gd|sgd|adam|lbfgs|gauss-newton --steps N --seed S [--lr η] [--batch-size B] --out model.json [--json F]</c>:
/// trains an MLP from a random initialization (or <c>--init M</c>) and writes the best point; Ctrl-C stops the run and
/// still writes the best model so far.
/// </summary>
public static class TrainCommand
{
    /// <summary>The optimizer names <c>--optimizer</c> accepts.</summary>
    public static IReadOnlyList<string> OptimizerNames { get; } = ["gd", "sgd", "adam", "lbfgs", "gauss-newton"];

    /// <summary>Exit code of a run interrupted by Ctrl-C (128 + SIGINT); the best model so far is written.</summary>
    public const int Interrupted = 130;

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var command = new Command("train", "Train an MLP (gd, sgd, adam, lbfgs, gauss-newton) and write the best point; Ctrl-C writes the best model so far.");
        var data = new CommonOptions.DataOptions(command);
        var standardize = CommonOptions.Standardize();
        var hidden = new Option<string>("--hidden") { Description = "hidden widths, comma-separated, e.g. 64,64", DefaultValueFactory = _ => "64" };
        var activation = new Option<string>("--activation") { Description = "the hidden activation (see landscape init --help)", DefaultValueFactory = _ => "smoolu" };
        var optimizer = new Option<string>("--optimizer") { Description = "gd | sgd | adam | lbfgs | gauss-newton", DefaultValueFactory = _ => "adam" };
        var steps = new Option<int>("--steps") { Description = "the most optimizer steps (sgd: mini-batches; lbfgs: iterations)", DefaultValueFactory = _ => 100 };
        var seed = new Option<int>("--seed") { Description = "seed of the initialization and of the shuffling", DefaultValueFactory = _ => 0 };
        var lr = new Option<double?>("--lr") { Description = "learning rate (gd: default 1/λmax(∇²L) at the start; sgd: (1 − μ)/λmax; adam: default 1e-3)" };
        var batch = new Option<int?>("--batch-size") { Description = "rows per mini-batch (sgd: default 32; adam: default all rows)" };
        var momentum = new Option<double?>("--momentum") { Description = "sgd momentum μ (default 0.9)" };
        var targetLoss = new Option<double?>("--target-loss") { Description = "stop once L ≤ this (default: the float64 zero ℓd·(10ε·max(1,|y|))²)" };
        var init = new Option<string?>("--init") { Description = "start from this model file instead of a random initialization (--hidden, --activation, --standardize are then taken from it)" };
        var output = new Option<string>("--out") { Description = "the model file to write (the best point)", Required = true };
        var json = CommonOptions.Json();
        foreach (var o in new Option[] { standardize, hidden, activation, optimizer, steps, seed, lr, batch, momentum, targetLoss, init, output, json })
        {
            command.Options.Add(o);
        }
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var set = data.Load(result);
            string name = result.GetValue(optimizer)!;
            int budget = result.GetValue(steps);
            if (budget < 0)
            {
                throw new UsageException($"--steps: {budget} is negative");
            }
            using var opt = CreateOptimizer(name, result.GetValue(lr), result.GetValue(batch), result.GetValue(momentum), result.GetValue(seed));
            NetworkPoint start;
            if (result.GetValue(init) is { } initPath)
            {
                start = CommonOptions.LoadModel(initPath);
            }
            else
            {
                var widths = InitCommand.ParseWidths(result.GetValue(hidden)!);
                var sigma = InitCommand.ParseActivation(result.GetValue(activation)!);
                var mlp = new Mlp(set.InputDim, widths.Select(w => new HiddenLayer(w, sigma)).ToArray(), set.OutputDim);
                if (result.GetValue(standardize))
                {
                    mlp = mlp.WithScaling(InputScaling.Standardize(set));
                }
                start = new NetworkPoint(mlp, mlp.InitialParameters(result.GetValue(seed)));
            }
            if (result.GetValue(targetLoss) is { } t && !(t >= 0))
            {
                throw new UsageException($"--target-loss: {t} is not a number ≥ 0");
            }
            using var model = start.ToModel();
            using var map = new ResidualMap(model, set);
            var path = result.GetValue(output)!;

            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true; // keep the process alive: the trainer stops at the next step and the best point is written
                cancel.Cancel();
            };
            System.Console.CancelKeyPress += onCancel;
            TrainingResult run;
            try
            {
                run = context.WithProgress($"train ({name})", progress =>
                    Trainer.Run(map, opt, new TrainingOptions(budget, result.GetValue(targetLoss)), new StatusProgress(progress), cancel.Token));
            }
            finally
            {
                System.Console.CancelKeyPress -= onCancel;
            }
            InitCommand.SaveModel(path, new NetworkPoint(start.Network, run.BestParameters));
            Render(context, set, map, run, path);
            JsonOutput.Write(result.GetValue(json), w =>
            {
                w.WriteString("model", path);
                w.WriteString("data", set.Source);
                w.WriteNumber("n", map.ParameterCount);
                w.WriteNumber("d", set.Count);
                w.WriteNumber("outputs", set.OutputDim);
                w.WriteNumber("constraints", map.Constraints);
                Write(w, run);
            });
            if (run.Status == SolverStatus.Cancelled)
            {
                context.Err.WriteLine($"landscape: interrupted after {run.Steps} steps; wrote the best point (L = {run.BestLoss:G4}) to {path}");
                return Interrupted;
            }
            return LandscapeApp.Success;
        });
        return command;
    }

    /// <summary>Builds the optimizer <c>--optimizer</c> names; options that do not apply to it are usage errors.</summary>
    public static Optimizer CreateOptimizer(string name, double? lr, int? batchSize, double? momentum, int seed)
    {
        if (lr is { } r && !(r > 0 && double.IsFinite(r)))
        {
            throw new UsageException($"--lr: {r} is not a positive number");
        }
        if (batchSize is < 1)
        {
            throw new UsageException($"--batch-size: {batchSize} is not a positive number of rows");
        }
        if (momentum is { } m && !(m >= 0 && m < 1))
        {
            throw new UsageException($"--momentum: {m} is not in [0, 1)");
        }
        void Refuse(string option, bool given)
        {
            if (given)
            {
                throw new UsageException($"{option} does not apply to --optimizer {name}");
            }
        }
        switch (name)
        {
            case "gd":
                Refuse("--batch-size", batchSize is not null);
                Refuse("--momentum", momentum is not null);
                return new GradientDescent(new GradientDescentOptions(lr));
            case "sgd":
                return new StochasticGradientDescent(new SgdOptions(lr, batchSize ?? 32, momentum ?? 0.9, Seed: seed));
            case "adam":
                Refuse("--momentum", momentum is not null);
                return new Adam(new AdamOptions(lr ?? 1e-3, BatchSize: batchSize, Seed: seed));
            case "lbfgs":
            case "gauss-newton":
                Refuse("--lr", lr is not null);
                Refuse("--batch-size", batchSize is not null);
                Refuse("--momentum", momentum is not null);
                return name == "lbfgs" ? new Lbfgs() : new GaussNewton();
            default:
                throw new UsageException($"--optimizer: '{name}' is not one of {string.Join(", ", OptimizerNames)}");
        }
    }

    /// <summary>The run's JSON fields: status, steps, losses and the loss history.</summary>
    public static void Write(System.Text.Json.Utf8JsonWriter w, TrainingResult run)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(run);
        w.WriteString("optimizer", run.Optimizer);
        w.WriteString("settings", run.Settings);
        w.WriteString("status", StatusName(run.Status));
        if (run.Note is not null)
        {
            w.WriteString("note", run.Note);
        }
        w.WriteNumber("steps", run.Steps);
        w.WriteNumber("evaluations", run.Evaluations);
        w.WriteNumber("initialLoss", run.InitialLoss);
        WriteNumber(w, "finalLoss", run.FinalLoss);
        w.WriteNumber("bestLoss", run.BestLoss);
        w.WriteNumber("bestStep", run.BestStep);
        w.WriteNumber("targetLoss", run.TargetLoss);
        w.WriteNumber("seconds", run.Seconds);
        w.WriteStartArray("lossHistory");
        foreach (var v in run.LossHistory)
        {
            if (double.IsFinite(v))
            {
                w.WriteNumberValue(v);
            }
            else
            {
                w.WriteNullValue();
            }
        }
        w.WriteEndArray();
    }

    /// <summary>The status as the JSON spells it (<see cref="SolverStatusText.ToJsonName"/>, the one spelling of every status).</summary>
    public static string StatusName(SolverStatus status) => status.ToJsonName();

    private static void WriteNumber(System.Text.Json.Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v))
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static void Render(CliContext context, Dataset set, ResidualMap map, TrainingResult run, string path)
    {
        static string F(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("quantity", "value");
        void Row(string k, string v) => table.AddRow(Markup.Escape(k), Markup.Escape(v));
        Row("data", $"{set.Source}: d = {set.Count}, p = {set.InputDim}, ℓ = {set.OutputDim}, ℓd = {map.Constraints}");
        Row("parameters n", $"{map.ParameterCount} ({(map.ParameterCount > map.Constraints ? "n > ℓd: M is generically an (n − ℓd)-manifold" : "n ≤ ℓd: generically no zero-loss point")})");
        Row("optimizer", run.Settings);
        Row("status", $"{StatusName(run.Status)} after {run.Steps} steps{(run.Note is null ? "" : $" ({run.Note})")}");
        Row("loss L", $"{F(run.InitialLoss)} → {F(run.FinalLoss)}; best {F(run.BestLoss)} at step {run.BestStep} (target {F(run.TargetLoss)})");
        Row("time", $"{run.Seconds:0.00} s, {run.Evaluations} evaluations");
        Row("wrote", $"{path} (the best point)");
        context.Console.Write(table);
    }

    /// <summary>Turns trainer progress into the progress bar's fraction and status text (synchronously).</summary>
    private sealed class StatusProgress(IProgress<(double Fraction, string Status)> inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) =>
            inner.Report(((double)value.Step / Math.Max(1, value.Steps), $"step {value.Step}/{value.Steps}, L = {value.Loss.ToString("G4", CultureInfo.InvariantCulture)} (best {value.BestLoss.ToString("G4", CultureInfo.InvariantCulture)})"));
    }
}
