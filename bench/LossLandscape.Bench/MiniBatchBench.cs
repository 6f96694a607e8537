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
/// at most <c>--baseline-steps 60</c> steps (each costs a full pass); median of <c>--repeats 5</c> with min and max.
/// </summary>
public static class MiniBatchBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int rows = Int(args, "--rows", 60_000);
        int repeats = Int(args, "--repeats", 5);
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
            Console.WriteLine($"MLP p-64-10 tanh, B = {Batch}; median of {repeats} (min–max) steps per second; load {Load()}");
            Console.WriteLine("| data | optimizer | K = 1 (L every step) | K = ⌈d/B⌉ (default) | ratio |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var (name, data) in sets)
            {
                int epoch = (data.Count + Batch - 1) / Batch;
                int steps = Math.Max(minSteps, epochs * epoch);
                foreach (string optimizer in new[] { "sgd", "adam" })
                {
                    var before = Rates(data, optimizer, Batch, Math.Min(baselineSteps, steps), lossEvery: 1, repeats);
                    var after = Rates(data, optimizer, Batch, steps, lossEvery: null, repeats);
                    Console.WriteLine(FormattableString.Invariant(
                        $"| {name} (d = {data.Count}) | {optimizer} | {Cell(before)} | {Cell(after)} (K = {epoch}, {steps} steps) | {after[repeats / 2] / before[repeats / 2]:0.0}× |"));
                }
            }
        }
        finally
        {
            File.Delete(csv);
        }
        return 0;
    }

    /// <summary>Steps per second of <paramref name="repeats"/> runs of <paramref name="steps"/> steps, sorted.</summary>
    private static double[] Rates(Dataset data, string optimizer, int batch, int steps, int? lossEvery, int repeats)
    {
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(64, ActivationRegistry.Get("tanh"))], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        var rates = new double[repeats];
        for (int r = -1; r < repeats; r++) // r = −1: warm-up
        {
            using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
            using var map = new ResidualMap(model, data);
            using Optimizer opt = optimizer == "sgd"
                ? new StochasticGradientDescent(new SgdOptions(LearningRate: 0.01 / data.Count, BatchSize: batch))
                : new Adam(new AdamOptions(BatchSize: batch));
            var watch = Stopwatch.StartNew();
            var run = Trainer.Run(map, opt, new TrainingOptions(r < 0 ? Math.Min(steps, 5) : steps, TargetLoss: 0, LossEvery: lossEvery));
            if (run.Status == SolverStatus.Diverged)
            {
                throw new InvalidOperationException($"{optimizer} diverged after {run.Steps} steps: the rate would time a run cut short");
            }
            if (r >= 0)
            {
                rates[r] = run.Steps / watch.Elapsed.TotalSeconds;
            }
        }
        Array.Sort(rates);
        return rates;
    }

    private static string Cell(double[] rates) =>
        string.Create(CultureInfo.InvariantCulture, $"{rates[rates.Length / 2]:0.0} ({rates[0]:0.0}–{rates[^1]:0.0})");

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
