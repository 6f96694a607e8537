using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using LossLandscape.Training;
using Xunit.Abstractions;

namespace LossLandscape.Tests;

/// <summary>Two independently trained minima of a small network, trained once for the class.</summary>
public sealed class TwoMinimaFixture
{
    /// <summary>
    /// Iris, every fifth row (d = 30), the species code as one regression target, standardized inputs; one tanh layer of 16
    /// units (n = 97 > d); Gauss–Newton from He initializations with seeds 1 and 2, to the rounding floor.
    /// </summary>
    public TwoMinimaFixture()
    {
        Data = DatasetLoader.Load("builtin:iris", TargetSpec.LastColumn).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        Mlp = new Mlp(Data.InputDim, [new HiddenLayer(16, new Tanh())], 1).WithScaling(InputScaling.Standardize(Data));
        A = Train(1);
        B = Train(2);
    }

    public Dataset Data { get; }

    public Mlp Mlp { get; }

    public double[] A { get; }

    public double[] B { get; }

    private double[] Train(int seed)
    {
        using var model = new NetworkModel(Mlp, Mlp.InitialParameters(seed));
        using var map = new ResidualMap(model, Data);
        var run = Trainer.Run(map, new GaussNewton(), new TrainingOptions(200));
        Assert.True(run.BestLoss < Tolerances.ZeroLoss, $"seed {seed}: L = {run.BestLoss:G3} ({run.Status})");
        return run.BestParameters;
    }
}

/// <summary>The trained paths of the mode-connectivity literature: Garipov et al.'s curves and AutoNEB (Draxler et al. 2018).</summary>
public sealed class CurveTests(TwoMinimaFixture minima, ITestOutputHelper output) : IClassFixture<TwoMinimaFixture>
{
    /// <summary>A small budget: each trained path runs in about a second on the fixture's network, and NEB gets through its first cycle and an insertion.</summary>
    private const int SmallBudget = 500;

    private static double[] RandomVector(Random rng, int n) => Enumerable.Range(0, n).Select(_ => (2 * rng.NextDouble()) - 1).ToArray();

    private static void Close(double[] expected, double[] actual, double relative)
    {
        double scale = Math.Max(1, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= relative * scale, $"entry {i}: {actual[i]:R} vs {expected[i]:R}");
        }
    }

    [Fact]
    public void Bezier_Path_Is_The_Quadratic_And_Cubic_Bernstein_Formula_And_Exact_At_Its_Ends()
    {
        var rng = new Random(5);
        var a = RandomVector(rng, 7);
        var p = RandomVector(rng, 7);
        var q = RandomVector(rng, 7);
        var b = RandomVector(rng, 7);
        var quadratic = BezierPath.Create([a, p, b], 61);
        var cubic = BezierPath.Create([a, p, q, b], 61);
        foreach (var path in new[] { quadratic, cubic })
        {
            Assert.Equal(PathInterpolation.Curve, path.Interpolation);
            Assert.Equal(61, path.Vertices.Count);
            Assert.Equal(a, path.At(0));
            Assert.Equal(b, path.At(1));
            Assert.Equal(a, path.Vertices[0].Parameters);
            Assert.Equal(b, path.Vertices[^1].Parameters);
        }
        foreach (double t in new[] { 0.1, 0.25, 0.5, 0.7, 0.93 })
        {
            double s = 1 - t;
            // Garipov's quadratic curve (1 − t)²A + 2t(1 − t)θ + t²B and the cubic (1 − t)³A + 3t(1 − t)²P + 3t²(1 − t)Q + t³B.
            Close(a.Select((_, i) => (s * s * a[i]) + (2 * t * s * p[i]) + (t * t * b[i])).ToArray(), quadratic.At(t), Tolerances.ClosedForm);
            Close(a.Select((_, i) => (s * s * s * a[i]) + (3 * t * s * s * p[i]) + (3 * t * t * s * q[i]) + (t * t * t * b[i])).ToArray(), cubic.At(t), Tolerances.ClosedForm);
        }
        // The vertices are the curve at j/60, so At reproduces them exactly.
        Assert.Equal(cubic.Vertices[17].Parameters, cubic.At(cubic.Vertices[17].T));
        Assert.Equal(17.0 / 60, cubic.Vertices[17].T);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Curve_Coefficients_Sum_To_One_And_The_Chain_Is_Its_Hat_Functions(int bends)
    {
        var rng = new Random(2);
        for (int draw = 0; draw < 20; draw++)
        {
            double t = rng.NextDouble();
            foreach (var method in new[] { ConnectMethod.Bezier, ConnectMethod.Polychain })
            {
                double sum = Enumerable.Range(0, bends).Sum(i => CurveTraining.Coefficient(method, bends, i, t));
                Assert.Equal(1.0, sum, Tolerances.ClosedForm);
            }
        }
        for (int i = 0; i < bends; i++)
        {
            // The chain's bend i carries all the weight at its own t = i/(K − 1) and none at the others.
            for (int j = 0; j < bends; j++)
            {
                Assert.Equal(i == j ? 1.0 : 0.0, CurveTraining.Coefficient(ConnectMethod.Polychain, bends, i, (double)j / (bends - 1)), Tolerances.ClosedForm);
            }
        }
        Assert.Equal(0.5, CurveTraining.Coefficient(ConnectMethod.Polychain, bends, 1, 0.5 / (bends - 1)), Tolerances.ClosedForm);
    }

    [Fact]
    public void Garipov_Schedule_Is_Constant_Then_Linear_Down_To_One_Percent()
    {
        Assert.Equal(1.0, CurveTraining.ScheduleFactor(0));
        Assert.Equal(1.0, CurveTraining.ScheduleFactor(0.5));
        Assert.Equal(1 - (0.99 / 2), CurveTraining.ScheduleFactor(0.7), Tolerances.ClosedForm);
        Assert.Equal(0.01, CurveTraining.ScheduleFactor(0.9), Tolerances.ClosedForm);
        Assert.Equal(0.01, CurveTraining.ScheduleFactor(0.99));
    }

    [Fact]
    public void Henkelman_Jonsson_Tangent_Points_Uphill_And_Weights_By_Energy_At_Extrema()
    {
        double[] previous = [0, 0], current = [1, 0], next = [1, 1];
        // Rising: τ = τ⁺ = p_{i+1} − pᵢ. Falling: τ = τ⁻ = pᵢ − p_{i−1}.
        Close([0, 1], NudgedElasticBand.Tangent(previous, current, next, 0, 1, 2), Tolerances.ClosedForm);
        Close([1, 0], NudgedElasticBand.Tangent(previous, current, next, 2, 1, 0), Tolerances.ClosedForm);
        // A maximum, L = (0, 3, 1): ΔL_max = 3, ΔL_min = 2, L_{i+1} > L_{i−1}, so τ ∝ 3τ⁺ + 2τ⁻ = (2, 3).
        Close([2 / Math.Sqrt(13), 3 / Math.Sqrt(13)], NudgedElasticBand.Tangent(previous, current, next, 0, 3, 1), Tolerances.ClosedForm);
        // A minimum, L = (3, 0, 1): ΔL_max = 3, ΔL_min = 1, L_{i+1} < L_{i−1}, so τ ∝ 1τ⁺ + 3τ⁻ = (3, 1).
        Close([3 / Math.Sqrt(10), 1 / Math.Sqrt(10)], NudgedElasticBand.Tangent(previous, current, next, 3, 0, 1), Tolerances.ClosedForm);
        // Equal losses: the chord p_{i+1} − p_{i−1}.
        Close([1 / Math.Sqrt(2), 1 / Math.Sqrt(2)], NudgedElasticBand.Tangent(previous, current, next, 1, 1, 1), Tolerances.ClosedForm);
    }

    [Fact]
    public void Neb_Redistribution_Puts_Pivots_At_Equal_Arc_Length()
    {
        // An L-shaped chain of length 2: five points at arc length 0, ½, 1, 3/2, 2.
        var l = NudgedElasticBand.Redistribute([[0.0, 0.0], [0.2, 0.0], [1.0, 0.0], [1.0, 1.0]], 5);
        double[][] expected = [[0, 0], [0.5, 0], [1, 0], [1, 0.5], [1, 1]];
        for (int k = 0; k < 5; k++)
        {
            Close(expected[k], l[k], Tolerances.ExactAgreement);
        }
        // A straight chain in ℝ⁶ with uneven points a + s(b − a), s = 0, 0.1, 0.15, 0.6, 1: seven points at s = j/6, equal chords.
        var rng = new Random(3);
        var a = RandomVector(rng, 6);
        var b = RandomVector(rng, 6);
        var chain = new[] { 0, 0.1, 0.15, 0.6, 1 }.Select(s => a.Select((x, i) => x + (s * (b[i] - x))).ToArray()).ToList();
        var spread = NudgedElasticBand.Redistribute(chain, 7);
        Assert.Equal(a, spread[0]);
        Assert.Equal(chain[^1], spread[^1]);
        double step = ConnectingPath.Distance(a, chain[^1]) / 6;
        for (int k = 1; k < 7; k++)
        {
            Close(a.Select((x, i) => x + (k / 6.0 * (chain[^1][i] - x))).ToArray(), spread[k], Tolerances.ExactAgreement);
            Assert.Equal(step, ConnectingPath.Distance(spread[k - 1], spread[k]), Tolerances.ExactAgreement);
        }
    }

    [Fact]
    public void Trained_Paths_Lower_The_Straight_Lines_Barrier_And_Spend_The_Budget()
    {
        using var model = new NetworkModel(minima.Mlp, minima.A);
        using var map = new ResidualMap(model, minima.Data);
        var before = model.ToArray();
        var options = new ConnectOptions(MaxEvaluations: SmallBudget, Seed: 1);
        var linear = PathConnection.Run(map, ConnectMethod.Linear, minima.A, minima.B, options);
        output.WriteLine($"linear: barrier {linear.Measures.Barrier:G4}");
        Assert.True(linear.Measures.Barrier > Tolerances.StraightLineBarrier, $"the straight line has no barrier here: {linear.Measures.Barrier:G3}");
        foreach (var method in new[] { ConnectMethod.Bezier, ConnectMethod.Polychain, ConnectMethod.Neb })
        {
            var result = PathConnection.Run(map, method, minima.A, minima.B, options);
            output.WriteLine($"{method}: barrier {result.Measures.Barrier:G4}, max L {result.Measures.MaxLoss:G4}, length ratio {result.Measures.LengthRatio:G4}, {result.Evaluations}, {result.Seconds:0.00} s, {result.Status}: {result.Detail}");
            Assert.Equal(SolverStatus.Converged, result.Status);
            Assert.True(result.Measures.Barrier < Tolerances.TrainedBarrierFraction * linear.Measures.Barrier,
                $"{method}: barrier {result.Measures.Barrier:G4} vs the straight line's {linear.Measures.Barrier:G4}");
            Assert.Equal(minima.A, result.Path.Vertices[0].Parameters);
            Assert.Equal(minima.B, result.Path.Vertices[^1].Parameters);
            Assert.Equal(0, result.Evaluations.Jacobian);
            if (method == ConnectMethod.Neb)
            {
                // NEB stops when the next iteration (one gradient per interior pivot) would exceed the budget.
                int interior = result.Path.Vertices.Count - 2;
                Assert.InRange(result.Evaluations.Gradient, SmallBudget - interior + 1, SmallBudget);
                Assert.True(result.Path.Vertices.Count > NudgedElasticBand.InitialPivots, "AutoNEB inserted no pivot after its first cycle");
                Assert.True(result.Evaluations.Forward > 0, "the endpoints' losses and AutoNEB's chord checks are forward evaluations");
            }
            else
            {
                Assert.Equal(SmallBudget, result.Evaluations.Gradient);
                Assert.Equal(0, result.Evaluations.Forward);
            }
            Assert.Equal(before, model.ToArray());
        }
    }

    [Fact]
    public void Polychain_Passes_Through_Its_Bends_And_Bezier_Samples_Its_Curve()
    {
        using var model = new NetworkModel(minima.Mlp, minima.A);
        using var map = new ResidualMap(model, minima.Data);
        var options = new ConnectOptions(Points: 21, MaxEvaluations: 60, Seed: 4, Bends: 4);
        var chain = CurveTraining.Train(map, ConnectMethod.Polychain, minima.A, minima.B, options);
        Assert.Equal(PathInterpolation.Straight, chain.Path.Interpolation);
        Assert.Equal(4, chain.Path.Vertices.Count);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal((double)i / 3, chain.Path.Vertices[i].T, Tolerances.ClosedForm);
            Assert.Equal(chain.Bends[i], chain.Path.Vertices[i].Parameters);
            Assert.Equal(chain.Bends[i], chain.Path.At(chain.Path.Vertices[i].T));
        }
        // The trainable bends moved off the straight line.
        Assert.True(ConnectingPath.Distance(chain.Bends[1], minima.A.Select((x, j) => x + ((minima.B[j] - x) / 3)).ToArray()) > 0);
        var curve = CurveTraining.Train(map, ConnectMethod.Bezier, minima.A, minima.B, options);
        var bezier = Assert.IsType<BezierPath>(curve.Path);
        Assert.Equal(21, bezier.Vertices.Count);
        Assert.Equal(curve.Bends.Count, bezier.ControlPoints.Count);
        Assert.Equal(minima.A, bezier.ControlPoints[0]);
        Assert.Equal(minima.B, bezier.ControlPoints[^1]);
    }

    [Fact]
    public void A_Given_Learning_Rate_Spends_No_Hessian_Products_And_A_Huge_One_Diverges_Keeping_A_Finite_Curve()
    {
        using var model = new NetworkModel(minima.Mlp, minima.A);
        using var map = new ResidualMap(model, minima.Data);
        var given = CurveTraining.Train(map, ConnectMethod.Bezier, minima.A, minima.B, new ConnectOptions(MaxEvaluations: 20, LearningRate: 1e-4));
        Assert.Null(given.LambdaMax);
        Assert.Equal(20, given.Steps);
        var huge = CurveTraining.Train(map, ConnectMethod.Bezier, minima.A, minima.B, new ConnectOptions(MaxEvaluations: 400, LearningRate: 1e12));
        output.WriteLine($"lr 1e12: {huge.Status} after {huge.Steps} steps");
        Assert.Equal(SolverStatus.Diverged, huge.Status);
        Assert.True(huge.Bends.All(b => b.All(double.IsFinite)));
        var neb = NudgedElasticBand.Run(map, minima.A, minima.B, new ConnectOptions(MaxEvaluations: 400, LearningRate: 1e12));
        Assert.Equal(SolverStatus.Diverged, neb.Status);
        Assert.True(neb.Pivots.All(b => b.All(double.IsFinite)));
    }

    [Fact]
    public void Cancelled_Runs_Return_The_Start_And_Are_Still_Measured()
    {
        using var model = new NetworkModel(minima.Mlp, minima.A);
        using var map = new ResidualMap(model, minima.Data);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        foreach (var method in new[] { ConnectMethod.Bezier, ConnectMethod.Polychain, ConnectMethod.Neb })
        {
            var result = PathConnection.Run(map, method, minima.A, minima.B, new ConnectOptions(MaxEvaluations: 100, LearningRate: 1e-3), new RunLimits(Cancellation: cancel.Token));
            Assert.Equal(SolverStatus.Cancelled, result.Status);
            Assert.Equal(0, result.Evaluations.Gradient);
            Assert.True(result.Profile.Count >= PathEvaluation.DefaultPoints);
        }
    }
}
