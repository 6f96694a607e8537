using System.Globalization;
using LossLandscape.Approximations;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 23 §3: at a trained point of digits — an MLP under the squared error, and a small CNN (the rows as 1 × 8 × 8 images)
/// under cross-entropy — the errors of KFAC, EKFAC, the diagonal and the block diagonal against the exact Gauss–Newton matrix
/// (<see cref="ApproximationComparison"/>), and the time of one product and of one damped inverse product of each against one
/// exact GGN product. Timing rows: median of <c>--repeats</c> (default 5) after a warm-up; training is set-up, run once.
/// Options: <c>--hidden H</c> (default 16), <c>--steps S</c> (Adam steps, default 1000), <c>--repeats K</c>;
/// <c>--fashion-rows N</c> adds the Fashion-MNIST CNN (<c>builtin:fashion-mnist</c>, the first N training images, LeNet's
/// <c>conv:6:5,relu,pool:2,conv:12:5,relu,pool:2,flatten,linear</c>, n = 3898, cross-entropy, <c>--fashion-steps</c> Adam
/// steps, default 150) and <c>--skip-digits</c> leaves the two digits points out. At n = 3898 the four dense n × n matrices
/// of the exact route are measured within a 0.25 GB budget, so the errors come from probes; the block diagonal's damped
/// inverse, which forms each layer's dense block by n masked products (minutes), is timed only with <c>--time-block-inverse</c>.
/// </summary>
public static class ApproxBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int repeats = BenchRunner.Repeats(args);
        int hidden = BenchArgs.Int(args, "--hidden", 16);
        int steps = BenchArgs.Int(args, "--steps", 1000);
        Console.WriteLine($"load (/proc/loadavg) at start: {BenchRunner.LoadAverage()} on {Environment.ProcessorCount} cores, torch threads {get_num_threads()}");
        int fashionRows = BenchArgs.Int(args, "--fashion-rows", 0);
        if (fashionRows > 0)
        {
            int fashionSteps = BenchArgs.Int(args, "--fashion-steps", 150);
            var fashion = Landscape.OpenData("builtin:fashion-mnist", string.Create(CultureInfo.InvariantCulture, $"0:{fashionRows}")).Load();
            var lenet = ArchitectureSpec.Build("conv:6:5,relu,pool:2,conv:12:5,relu,pool:2,flatten,linear", fashion.InputShape, fashion.OutputDim);
            using var landscape = Landscape.For(new NetworkPoint(lenet, lenet.InitialParameters(1)), fashion, LossFunction.CrossEntropy);
            var trained = landscape.Train(new Landscape.TrainOptions(fashionSteps, Optimizer: new Adam(new AdamOptions(1e-3))));
            Measure(landscape.Map, $"Fashion-MNIST CNN [1, 28, 28] → {lenet.Spec}, first {fashionRows} training images, cross-entropy, {fashionSteps} Adam steps (L = {trained.BestLoss:G4})", repeats,
                new RunLimits(MemoryBudgetBytes: 1L << 28), timeBlockInverse: args.Contains("--time-block-inverse"));
        }
        if (args.Contains("--skip-digits"))
        {
            return 0;
        }
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));

        var mlp = new Mlp(data.InputDim, [new HiddenLayer(hidden, ActivationRegistry.Get("tanh"))], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        using (var landscape = Landscape.For(new NetworkPoint(mlp, mlp.InitialParameters(1)), data))
        {
            var trained = landscape.Train(new Landscape.TrainOptions(steps, Optimizer: new Adam(new AdamOptions(1e-2))));
            Measure(landscape.Map, $"digits MLP {data.InputDim}-{hidden}-{data.OutputDim} tanh, squared error, {steps} Adam steps (L = {trained.BestLoss:G4})", repeats);
        }

        var images = data.WithInputShape([1, 8, 8]);
        var cnn = ArchitectureSpec.Build("conv:4:3,relu,pool:2,bn,flatten,linear", images.InputShape, images.OutputDim).WithScaling(InputScaling.Standardize(images));
        using (var landscape = Landscape.For(new NetworkPoint(cnn, cnn.InitialParameters(2)), images, LossFunction.CrossEntropy))
        {
            var trained = landscape.Train(new Landscape.TrainOptions(steps / 2, Optimizer: new Adam(new AdamOptions(1e-2))));
            Measure(landscape.Map, $"digits CNN [1, 8, 8] → {cnn.Spec}, cross-entropy, {steps / 2} Adam steps (L = {trained.BestLoss:G4})", repeats);
        }
        return 0;
    }

    private static void Measure(IResidualProblem map, string title, int repeats, RunLimits? limits = null, bool timeBlockInverse = true)
    {
        string G(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
        Console.WriteLine();
        Console.WriteLine($"{title}: n = {map.ParameterCount}, d = {map.Rows}");
        var report = ApproximationComparison.Compute(map, new ApproximationOptions(K: 5), limits);
        Console.WriteLine($"exact G: tr = {G(report.ExactTrace)}, top 5 {string.Join(", ", report.Approximations[0].ExactTopEigenvalues.Select(G))} ({report.ExactProducts} products, {report.ExactSeconds:0.0} s); {report.Note}");
        Console.WriteLine();
        Console.WriteLine("| kind | ‖A − G‖_F/‖G‖_F | trace error | top 5 of A | top-5 overlap |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var a in report.Approximations)
        {
            Console.WriteLine($"| {a.Kind} | {G(a.FrobeniusError)}{(a.FrobeniusErrorStdError > 0 ? " ± " + G(a.FrobeniusErrorStdError) : "")} | {G(a.TraceError)} | {string.Join(", ", a.TopEigenvalues.Select(G))} | {a.SubspaceOverlap:0.00}/5 |");
        }

        using var scope = NewDisposeScope();
        var ggn = new GaussNewtonOperator(map);
        var v = tensor(SeededNormal.Vector(new Random(3), map.ParameterCount), dtype: ScalarType.Float64);
        var exact = BenchRunner.Time(repeats, () =>
        {
            using var s = NewDisposeScope();
            ggn.Apply(v);
        });
        // λ = tr G/n: a damping of the order of G's mean eigenvalue, as Laplace's prior precision would be.
        double damping = report.ExactTrace / map.ParameterCount;
        var approximations = new (string Kind, Func<LinearOperator> Build)[]
        {
            ("kfac", () => KfacOperator.Create(map)),
            ("ekfac", () => EkfacOperator.Create(map)),
            ("diag", () => GaussNewtonDiagonal.Compute(map)),
            ("block", () => new BlockDiagonalOperator(ggn, ParameterBlocks.Of(map.Model))),
        };
        Console.WriteLine();
        Console.WriteLine($"| kind | build, median (min–max) of {repeats} | one product A·v | × one exact G·v | one (A + λI)⁻¹v, λ = tr G/n = {G(damping)} | × one exact G·v |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine($"| exact GGN | — | {BenchRunner.S(exact)} | 1 | — | — |");
        foreach (var (kind, build) in approximations)
        {
            var built = BenchRunner.Time(repeats, () => (build() as IDisposable)?.Dispose());
            var op = build();
            try
            {
                var product = BenchRunner.Time(repeats, () =>
                {
                    using var s = NewDisposeScope();
                    op.Apply(v);
                });
                if (kind == "block" && !timeBlockInverse)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {kind} | {BenchRunner.S(built)} | {BenchRunner.S(product)} | {product.Median / exact.Median:0.000} | not timed (its dense blocks take n masked products) | |"));
                    continue;
                }
                // The warm-up forms what the inverse needs once (the block diagonal's dense blocks, the eigendecompositions).
                var inverse = BenchRunner.Time(repeats, () =>
                {
                    using var s = NewDisposeScope();
                    ((IDampedInverse)op).DampedInverseTimes(v, damping);
                });
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {kind} | {BenchRunner.S(built)} | {BenchRunner.S(product)} | {product.Median / exact.Median:0.000} | {BenchRunner.S(inverse)} | {inverse.Median / exact.Median:0.000} |"));
            }
            finally
            {
                (op as IDisposable)?.Dispose();
            }
        }
    }
}
