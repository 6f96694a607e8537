using LossLandscape.Engine;
using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Reports;
using LossLandscape.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>The optimizers, the trainer, <c>landscape train</c> and <c>landscape experiment trained-spectra</c>.</summary>
public sealed class TrainingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-train-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Iris, one-hot (ℓ = 3), every fifth row (d = 30), one smooLU layer of 8 units, standardized inputs, He init seed 1.</summary>
    private static (Mlp Mlp, Dataset Data, double[] Start) SmallProblem()
    {
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(8, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        return (mlp, data, mlp.InitialParameters(1));
    }

    private static Optimizer Create(string name) => name switch
    {
        "gd" => new GradientDescent(),
        "sgd" => new StochasticGradientDescent(new SgdOptions(BatchSize: 8, Seed: 3)),
        "adam" => new Adam(new AdamOptions(LearningRate: 1e-2)),
        "lbfgs" => new Lbfgs(),
        "lbfgs-armijo" => new Lbfgs(new LbfgsOptions(LineSearch: LineSearchKind.Armijo)),
        "gauss-newton" => new GaussNewton(),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [InlineData("gd")]
    [InlineData("sgd")]
    [InlineData("adam")]
    [InlineData("lbfgs")]
    [InlineData("lbfgs-armijo")]
    [InlineData("gauss-newton")]
    public void Each_Optimizer_Decreases_The_Loss_With_A_Fixed_Seed(string name)
    {
        var (mlp, data, start) = SmallProblem();
        using var model = new NetworkModel(mlp, start);
        var map = new ResidualMap(model, data);
        using var optimizer = Create(name);
        var run = Trainer.Run(map, optimizer, new TrainingOptions(50));
        output.WriteLine($"{name}: {run.InitialLoss:G4} → best {run.BestLoss:G4} in {run.Steps} steps ({run.Status}, {run.Seconds:0.00} s); {run.Settings}");
        Assert.True(run.BestLoss < Tolerances.TrainingProgress * run.InitialLoss, $"{name}: L {run.InitialLoss:G4} → {run.BestLoss:G4}");
        // L over all rows after every step, but once an epoch (⌈30/8⌉ = 4 steps) and after the last for mini-batch sgd.
        int every = name == "sgd" ? 4 : 1;
        Assert.Equal(every, run.LossEvery);
        Assert.Equal([.. Enumerable.Range(0, (run.Steps + every - 1) / every).Select(i => i * every), run.Steps], run.LossSteps);
        Assert.Equal(run.LossSteps.Count, run.LossHistory.Count);
        Assert.Equal(run.LossHistory.Min(), run.BestLoss);
        // The model is left at the best point.
        Assert.Equal(run.BestLoss, map.Loss(), Tolerances.ExactAgreement * run.InitialLoss);
        Assert.Equal(run.BestParameters, model.ToArray());
    }

    /// <summary>A model that counts its forward passes over all d rows (an evaluation of L) and over fewer (a mini-batch).</summary>
    private sealed class CountingModel(IDifferentiableModel inner, int rows) : IDifferentiableModel
    {
        public int FullPasses { get; private set; }

        public int InputDim => inner.InputDim;

        public int OutputDim => inner.OutputDim;

        public int ParameterCount => inner.ParameterCount;

        public IReadOnlyList<Tensor> Leaves => inner.Leaves;

        public Tensor Forward(Tensor inputs)
        {
            if (inputs.shape[0] == rows)
            {
                FullPasses++;
            }
            return inner.Forward(inputs);
        }
    }

    /// <summary>
    /// Issue 19 §8: sgd and mini-batch adam evaluated L over all rows after every mini-batch step (300 steps on 60,000 rows
    /// took 134 s); now once an epoch by default, with the running mini-batch loss in the progress between.
    /// </summary>
    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void Mini_Batch_Methods_Evaluate_L_Over_All_Rows_Once_An_Epoch_Not_After_Every_Step(string name)
    {
        var (mlp, data, start) = SmallProblem();
        using var network = new NetworkModel(mlp, start);
        var model = new CountingModel(network, data.Count);
        var map = new ResidualMap(model, data);
        using Optimizer optimizer = name == "sgd"
            ? new StochasticGradientDescent(new SgdOptions(LearningRate: 1e-3, BatchSize: 8, Seed: 3))
            : new Adam(new AdamOptions(LearningRate: 1e-2, BatchSize: 8, Seed: 3));
        var reports = new List<TrainingProgress>();
        var run = Trainer.Run(map, optimizer, new TrainingOptions(50, TargetLoss: 0), new RunLimits(Progress: new Inline(reports.Add)));

        int[] expected = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 50]; // K = ⌈30/8⌉ = 4, and the last step
        Assert.Equal(expected, run.LossSteps);
        Assert.Equal(4, run.LossEvery);
        // One pass over all rows per evaluation of L, and two for the finiteness check of H and L at p₀; none per mini-batch step.
        Assert.True(model.FullPasses <= expected.Length + 2, $"{model.FullPasses} passes over all rows in {run.Steps} steps");
        Assert.Equal(50, reports.Count);
        foreach (var report in reports)
        {
            bool evaluated = expected.Contains(report.Step);
            Assert.Equal(evaluated ? report.Step : report.Step / 4 * 4, report.LossStep);
            Assert.Equal(run.LossHistory[Array.IndexOf(expected, report.LossStep)], report.Loss);
            // Between evaluations the running mean of the mini-batch estimates of L; none right after one.
            Assert.True(evaluated ? report.BatchLoss is null : report.BatchLoss is > 0 and < double.PositiveInfinity, $"step {report.Step}: batch loss {report.BatchLoss}");
        }

        // K = 1 is the old behaviour: an evaluation after every step.
        using var again = new NetworkModel(mlp, start);
        var counted = new CountingModel(again, data.Count);
        using Optimizer same = new StochasticGradientDescent(new SgdOptions(LearningRate: 1e-3, BatchSize: 8, Seed: 3));
        var everyStep = Trainer.Run(new ResidualMap(counted, data), same, new TrainingOptions(50, TargetLoss: 0, LossEvery: 1));
        Assert.Equal(Enumerable.Range(0, 51), everyStep.LossSteps);
        Assert.True(counted.FullPasses >= 51, $"{counted.FullPasses} passes over all rows with K = 1");
        output.WriteLine($"{name}: {model.FullPasses} passes over all rows in 50 steps once an epoch, {counted.FullPasses} with K = 1");
    }

    [Fact]
    public void Train_Loss_Every_Writes_The_Evaluated_Steps_And_Refuses_Zero()
    {
        string model = Path.Combine(_dir, "m.json"), json = Path.Combine(_dir, "t.json");
        var (code, _, err) = CliTests.Run("train", "--data", "builtin:iris", "--one-hot", "species", "--optimizer", "sgd", "--lr", "1e-4",
            "--steps", "10", "--loss-every", "3", "--out", model, "--json", json);
        Assert.True(code == 0, err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            Assert.Equal(3, doc.RootElement.GetProperty("lossEvery").GetInt32());
            Assert.Equal([0, 3, 6, 9, 10], doc.RootElement.GetProperty("lossSteps").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(5, doc.RootElement.GetProperty("lossHistory").GetArrayLength());
        }
        (code, _, err) = CliTests.Run("train", "--data", "builtin:iris", "--one-hot", "species", "--optimizer", "sgd", "--steps", "10", "--loss-every", "0", "--out", model);
        Assert.Equal(2, code);
        Assert.Equal("landscape: error: --loss-every: 0 is not a positive number of steps", err.Trim());
    }

    [Theory]
    [InlineData(LineSearchKind.StrongWolfe)]
    [InlineData(LineSearchKind.Armijo)]
    public void Lbfgs_Reaches_The_Minimum_Of_A_Quadratic(LineSearchKind search)
    {
        // A linear model (no hidden layer) on standardized diabetes: L(p) = |Ap − y|² is a convex quadratic.
        var data = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);
        var mlp = new Mlp(data.InputDim, [], 1).WithScaling(InputScaling.Standardize(data));
        using var model = new NetworkModel(mlp, new double[mlp.ParameterCount]);
        var map = new ResidualMap(model, data);
        var run = Trainer.Run(map, new Lbfgs(new LbfgsOptions(LineSearch: search)), new TrainingOptions(200, TargetLoss: 0));

        // The minimum from the normal equations of the design matrix [(x − shift)/scale, 1].
        using var scope = NewDisposeScope();
        var x = (data.InputsTensor() - tensor(mlp.Scaling!.Shift)) / tensor(mlp.Scaling!.Scale);
        var a = cat([x, ones(data.Count, 1, dtype: float64)], 1);
        var solution = linalg.lstsq(a, data.TargetsTensor()).Solution;
        var residual = a.matmul(solution) - data.TargetsTensor();
        double minimum = residual.pow(2).sum().item<double>();
        output.WriteLine($"{search}: L = {run.BestLoss:R} vs L* = {minimum:R} after {run.Steps} steps ({run.Status}, {run.Evaluations} evaluations)");
        Assert.True(Math.Abs(run.BestLoss - minimum) <= Tolerances.QuadraticMinimum * minimum, $"L = {run.BestLoss:R}, L* = {minimum:R}");
    }

    [Fact]
    public void GaussNewton_Reaches_Zero_Loss_On_Digits_When_n_Exceeds_ld()
    {
        // 50 rows one-hot (ℓd = 500), one smooLU layer of 64: n = 65·64 + 65·10 = 4810 > 500.
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(50);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(64, new SmooLU())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        Assert.True(mlp.ParameterCount > data.Count * data.OutputDim);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
        var map = new ResidualMap(model, data);
        var run = Trainer.Run(map, new GaussNewton(), new TrainingOptions(100));
        output.WriteLine($"digits: n = {mlp.ParameterCount}, ℓd = {map.Constraints}: L {run.InitialLoss:G4} → {run.BestLoss:G4} in {run.Steps} steps ({run.Status}, {run.Seconds:0.00} s)");
        Assert.True(run.BestLoss < Tolerances.ZeroLoss, $"L = {run.BestLoss:G4} after {run.Steps} steps ({run.Status})");
        Assert.Equal(SolverStatus.Converged, run.Status);
    }

    [Fact]
    public void GaussNewton_Reaches_Zero_Loss_On_Diabetes_When_n_Exceeds_d()
    {
        // All 442 rows, standardized inputs, raw targets (up to 346), ℓ = 1; one smooLU layer of 256: n = 11·256 + 257 = 3073 > d = 442.
        // (Width 64, n = 769, also heads for M but takes far more than 100 steps from this initialization.)
        var data = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(256, new SmooLU())], 1).WithScaling(InputScaling.Standardize(data));
        Assert.True(mlp.ParameterCount > data.Count);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
        var map = new ResidualMap(model, data);
        var run = Trainer.Run(map, new GaussNewton(), new TrainingOptions(100));
        output.WriteLine($"diabetes: n = {mlp.ParameterCount}, ℓd = {map.Constraints}: L {run.InitialLoss:G4} → {run.BestLoss:G4} in {run.Steps} steps ({run.Status}, {run.Seconds:0.00} s)");
        Assert.True(run.BestLoss < Tolerances.ZeroLoss, $"L = {run.BestLoss:G4} after {run.Steps} steps ({run.Status})");
    }

    [Fact]
    public void Cancellation_Returns_The_Best_Point()
    {
        var (mlp, data, start) = SmallProblem();
        using var model = new NetworkModel(mlp, start);
        var map = new ResidualMap(model, data);
        using var cancel = new CancellationTokenSource();
        var progress = new Inline(p =>
        {
            if (p.Step == 5)
            {
                cancel.Cancel();
            }
        });
        var run = Trainer.Run(map, new Adam(new AdamOptions(LearningRate: 0.05)), new TrainingOptions(1000), new RunLimits(Cancellation: cancel.Token, Progress: progress));
        Assert.Equal(SolverStatus.Cancelled, run.Status);
        Assert.Equal(5, run.Steps);
        Assert.Equal(run.LossHistory.Min(), run.BestLoss);
        Assert.Equal(run.BestParameters, model.ToArray());
    }

    [Fact]
    public void Divergence_Stops_And_Keeps_The_Best_Point()
    {
        var (mlp, data, start) = SmallProblem();
        using var model = new NetworkModel(mlp, start);
        var map = new ResidualMap(model, data);
        var run = Trainer.Run(map, new GradientDescent(new GradientDescentOptions(1e6)), new TrainingOptions(200));
        Assert.Equal(SolverStatus.Diverged, run.Status);
        Assert.True(double.IsFinite(map.Loss()));
        Assert.Equal(run.BestLoss, map.Loss());
    }

    [Fact]
    public void GaussNewton_Stalls_Above_Zero_When_n_Is_Below_ld()
    {
        // 80 rows one-hot (ℓd = 800) without the pixels constant on them, 10 tanh units: n < 800. Generically no zero-loss point.
        var data = TrainedSpectra.DropConstantInputs(DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(80));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(10, new Tanh())], data.OutputDim).WithScaling(InputScaling.Standardize(data));
        using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
        var map = new ResidualMap(model, data);
        var run = Trainer.Run(map, new GaussNewton(), new TrainingOptions(30));
        output.WriteLine($"n = {mlp.ParameterCount} < ℓd = {map.Constraints}: L {run.InitialLoss:G4} → {run.BestLoss:G4} in {run.Steps} steps ({run.Status}, {run.Seconds:0.00} s)");
        Assert.True(run.BestLoss > Tolerances.StalledLoss, $"L = {run.BestLoss:G4}");
        // rank J ≤ n < ℓd: H is not a submersion anywhere, so 0 is not a regular value and M is generically empty.
        var rank = JacobianFactorization.RankAt(map);
        output.WriteLine($"rank J = {rank.Rank} (tolerance {rank.Tolerance:G3}, σ_rank {rank.SigmaAbove:G3}, σ_rank+1 {rank.SigmaBelow:G3}) of n = {map.ParameterCount}");
        Assert.True(rank.Rank <= map.ParameterCount && rank.Rank < map.Constraints);
    }

    [Fact]
    public void Train_Cli_Writes_The_Model_And_The_Loss_History()
    {
        var modelPath = Path.Combine(_dir, "m.json");
        var json = Path.Combine(_dir, "train.json");
        var (code, stdout, err) = CliTests.Run("train", "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--standardize", "--hidden", "8",
            "--optimizer", "adam", "--lr", "0.01", "--steps", "40", "--seed", "2", "--out", modelPath, "--json", json);
        Assert.True(code == 0, stdout + err);
        Assert.Contains("Adam", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        var history = root.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(41, history.Length);
        Assert.Equal(40, root.GetProperty("steps").GetInt32());
        Assert.Equal("stoppedWithoutConvergence", root.GetProperty("status").GetString());
        double best = root.GetProperty("bestLoss").GetDouble();
        Assert.Equal(history.Min(), best);
        Assert.True(best < history[0]);
        // The written model is the best point: evaluating it gives the best loss.
        var point = ModelFile.Load(modelPath);
        using var model = point.ToModel();
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Dedupe();
        Assert.Equal(best, new ResidualMap(model, data).Loss(), Tolerances.ReloadedLoss * best);
    }

    [Fact]
    public void Train_Cli_Gauss_Newton_Interpolates_Diabetes_Subset()
    {
        var modelPath = Path.Combine(_dir, "gn.json");
        var json = Path.Combine(_dir, "gn-train.json");
        var (code, stdout, err) = CliTests.Run("train", "--data", "builtin:diabetes", "--standardize", "--hidden", "256",
            "--optimizer", "gauss-newton", "--steps", "100", "--seed", "1", "--out", modelPath, "--json", json);
        Assert.True(code == 0, stdout + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.Equal("converged", doc.RootElement.GetProperty("status").GetString());
        Assert.True(doc.RootElement.GetProperty("bestLoss").GetDouble() < Tolerances.ZeroLoss);
    }

    [Theory]
    [InlineData("--optimizer", "newton")]
    [InlineData("--steps", "-3")]
    [InlineData("--lr", "-1")]
    [InlineData("--hidden", "0")]
    [InlineData("--activation", "swish")]
    public void Train_Cli_Bad_Input_Exits_2(string option, string value)
    {
        var args = new List<string> { "train", "--data", "builtin:iris", "--one-hot", "species", "--out", Path.Combine(_dir, "x.json"), option, value };
        var (code, _, err) = CliTests.Run(args.ToArray());
        Assert.Equal(2, code);
        Assert.StartsWith("landscape: error:", err.Trim());
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Train_Cli_Refuses_Options_That_Do_Not_Apply()
    {
        var (code, _, err) = CliTests.Run("train", "--data", "builtin:iris", "--one-hot", "species", "--optimizer", "gauss-newton", "--lr", "0.1", "--out", Path.Combine(_dir, "x.json"));
        Assert.Equal(2, code);
        Assert.Contains("--lr does not apply to --optimizer gauss-newton", err);
    }

    [Fact]
    public void Outlier_Rule_Finds_The_Largest_Gap()
    {
        double[] top = [100, 90, 80, 1, 0.9, 0.8];
        Assert.Equal((3, 80.0), TrainedSpectra.CountOutliers(top, 10, 1e-9));
        double[] onM = [5, 4, 0, 0];
        Assert.Equal(2, TrainedSpectra.CountOutliers(onM, 10, 1e-9).Outliers);
    }

    [Fact]
    public void Experiment_Quick_Runs_And_Writes_The_Fields()
    {
        var json = Path.Combine(_dir, "spectra.json");
        var (code, stdout, err) = CliTests.Run("experiment", "trained-spectra", "--quick", "--json", json);
        output.WriteLine(stdout);
        Assert.True(code == 0, stdout + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal(10, root.GetProperty("outputs").GetInt32());
        var points = root.GetProperty("points").EnumerateArray().ToArray();
        Assert.Equal(TrainedSpectraOptions.Quick.Widths.Count * TrainedSpectraOptions.Quick.Optimizers.Count, points.Length);
        int constraints = root.GetProperty("constraints").GetInt32();
        foreach (var p in points)
        {
            foreach (var field in new[] { "finalLoss", "jacobian", "hessian", "lossHistory", "n", "optimizer" })
            {
                Assert.True(p.TryGetProperty(field, out _), field);
            }
            var h = p.GetProperty("hessian");
            foreach (var field in new[] { "method", "tolerance", "positive", "zero", "negative", "top", "outliers", "classes", "negativeRatio" })
            {
                Assert.True(h.TryGetProperty(field, out _), field);
            }
            var j = p.GetProperty("jacobian");
            Assert.True(j.GetProperty("tolerance").GetDouble() > 0);
            // The transition: Gauss–Newton reaches M when n exceeds the rank J must have there, and then rank J is that
            // rank, min(n, (ℓ − 1)d + h + 1) for one-hot targets, and dim M = n − rank; below it L stays > 0 and rank J ≤ n.
            if (p.GetProperty("optimizer").GetString() == "gauss-newton")
            {
                int n = p.GetProperty("n").GetInt32();
                int rankOnM = p.GetProperty("oneHotRankOnM").GetInt32();
                if (n > constraints)
                {
                    Assert.True(p.GetProperty("onManifold").GetBoolean());
                    Assert.Equal(rankOnM, j.GetProperty("rank").GetInt32());
                    Assert.Equal(n - rankOnM, p.GetProperty("manifoldDimension").GetInt32());
                    Assert.Equal(0, h.GetProperty("negative").GetInt32());
                }
                else
                {
                    Assert.False(p.GetProperty("onManifold").GetBoolean());
                    Assert.True(j.GetProperty("rank").GetInt32() <= n);
                }
            }
        }
        // The quick version covers what the study is about: both sides of n = ℓd, and every route of the spectrum.
        var sizes = points.Select(p => p.GetProperty("n").GetInt32()).ToArray();
        Assert.Contains(sizes, n => n < constraints);
        Assert.Contains(sizes, n => n > constraints);
        var methods = points.Select(p => p.GetProperty("hessian").GetProperty("method").GetString()).ToHashSet();
        Assert.Superset(new HashSet<string?> { "dense", "lanczos", "lanczos + σ(J) on M" }, methods);
    }

    [Fact]
    public void Experiment_Quick_Help_And_Docs_Quote_The_Library_Settings()
    {
        // One source for what --quick does: the library's record describes itself, and the help and the docs print that text.
        string description = TrainedSpectraOptions.Quick.Describe();
        Assert.Contains("20 rows, widths 2 and 19", description);
        var (code, stdout, err) = CliTests.Run("experiment", "trained-spectra", "--help");
        Assert.True(code == 0, err);
        // Help and Markdown wrap lines: compare with every run of white space as one space.
        static string Words(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");
        Assert.Contains(Words(description), Words(stdout), StringComparison.Ordinal);
        var docs = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "trained-spectra.md"));
        Assert.Contains(Words(description), Words(docs), StringComparison.Ordinal);
    }

    /// <summary>The directory holding LossLandscape.sln, found upwards from the test assembly.</summary>
    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LossLandscape.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no LossLandscape.sln above {AppContext.BaseDirectory}");
    }

    /// <summary>The trainer's <see cref="TrainingProgress"/> reports, synchronously.</summary>
    private sealed class Inline(Action<TrainingProgress> report) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value)
        {
            if (value is TrainingProgress step)
            {
                report(step);
            }
        }
    }
}
