using System.Diagnostics;
using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Training;
using static LossLandscape.Bench.BenchArgs;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 19 §8: steps per second of the mini-batch methods (sgd; adam with B = 32) when L over all rows is evaluated
/// after every step (K = 1, what the trainer did before) against the default, once an epoch (K = ⌈d/B⌉), in the same
/// run. On digits (one-hot digit, d = 1797) and on the <c>csv</c> benchmark's generated CSV of Fashion-MNIST's shape
/// (784 pixel columns in 0–255 and a label in 0–9, <c>--rows 60000</c>), loaded as <c>--data</c> loads it; MLP p-64-10 tanh (train's default
/// width), B = 32; sgd with η = 0.01/d (L is a sum over the d rows, so its gradient grows with d), adam with its
/// defaults; a run that diverges stops the benchmark. Each setting runs <c>--epochs 2</c> epochs of steps (at least <c>--min-steps 200</c>), K = 1 runs
/// at most <c>--baseline-steps 60</c> steps (each costs a full pass). Each cell is the median of <c>--repeats 5</c> runs (at
/// least 5) after a warm-up run of the same length, with min and max, as steps per second (the timing is of seconds per
/// step, so the median rate is one over the median time of a step); the ratio is of the medians.
/// </summary>
public static class MiniBatchBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int rows = Int(args, "--rows", 60_000);
        int repeats = BenchRunner.Repeats(args);
        int epochs = Int(args, "--epochs", 2);
        int minSteps = Int(args, "--min-steps", 200);
        int baselineSteps = Int(args, "--baseline-steps", 60);
        const int Batch = 32;

        string csv = Path.Combine(Path.GetTempPath(), $"minibatch-bench-{rows}.csv");
        try
        {
            CsvBench.Generate(csv, rows); // the csv benchmark's file: Fashion-MNIST's shape, seed 19
            var sets = new (string Name, Dataset Data)[]
            {
                ("digits", DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"))),
                ($"CSV {rows:N0} × 785", DatasetLoader.Load(csv, TargetSpec.Classes("label"))),
            };
            Console.WriteLine($"MLP p-64-10 tanh, B = {Batch}; steps per second, median (min–max) of {repeats} runs after a warm-up run; load {Load()}");
            Console.WriteLine("| data | optimizer | K = 1 (L every step), steps/s | K = ⌈d/B⌉ (default), steps/s | ratio of medians |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var (name, data) in sets)
            {
                int epoch = (data.Count + Batch - 1) / Batch;
                int steps = Math.Max(minSteps, epochs * epoch);
                foreach (string optimizer in new[] { "sgd", "adam" })
                {
                    var before = PerStep(data, optimizer, Batch, Math.Min(baselineSteps, steps), lossEvery: 1, repeats);
                    var after = PerStep(data, optimizer, Batch, steps, lossEvery: null, repeats);
                    Console.WriteLine(FormattableString.Invariant(
                        $"| {name} (d = {data.Count}) | {optimizer} | {Cell(before)} | {Cell(after)} (K = {epoch}, {steps} steps) | {before.Median / after.Median:0.0}× |"));
                }
            }
        }
        finally
        {
            File.Delete(csv);
        }
        return 0;
    }

    /// <summary>
    /// Seconds per step of a training run of <paramref name="steps"/> steps from the same initial point: a warm-up run, then
    /// <paramref name="repeats"/> timed runs, each its time over the steps it took. A run that diverges stops the benchmark.
    /// </summary>
    private static Timing PerStep(Dataset data, string optimizer, int batch, int steps, int? lossEvery, int repeats)
    {
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(64, ActivationRegistry.Get("tanh"))], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        return BenchRunner.Measure(repeats, () =>
        {
            using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
            using var map = new ResidualMap(model, data);
            using Optimizer opt = optimizer == "sgd"
                ? new StochasticGradientDescent(new SgdOptions(LearningRate: 0.01 / data.Count, BatchSize: batch))
                : new Adam(new AdamOptions(BatchSize: batch));
            var watch = Stopwatch.StartNew();
            var run = Trainer.Run(map, opt, new TrainingOptions(steps, TargetLoss: 0, LossEvery: lossEvery));
            double seconds = watch.Elapsed.TotalSeconds;
            if (run.Status == SolverStatus.Diverged)
            {
                throw new InvalidOperationException($"{optimizer} diverged after {run.Steps} steps: the rate would time a run cut short");
            }
            return seconds / run.Steps;
        });
    }

    /// <summary>Steps per second from seconds per step: the median rate, then (min–max), the slowest run giving the min.</summary>
    private static string Cell(Timing perStep) =>
        string.Create(CultureInfo.InvariantCulture, $"{1 / perStep.Median:0.0} ({1 / perStep.Max:0.0}–{1 / perStep.Min:0.0})");

    private static string Load()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
