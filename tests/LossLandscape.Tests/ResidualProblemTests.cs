using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// A problem that is not a <see cref="ResidualMap"/> but answers every question by one: the code paths that a cluster
/// session takes (everything above the problem layer is written against <see cref="IResidualProblem"/>) without Orleans,
/// counting the moves of its point through the interface.
/// </summary>
internal sealed class DelegatingProblem(ResidualMap map) : IResidualProblem
{
    private readonly IResidualProblem _map = map;

    public int ParameterCount => _map.ParameterCount;

    public int Rows => _map.Rows;

    public int Outputs => _map.Outputs;

    public int Constraints => _map.Constraints;

    public double Exponent => _map.Exponent;
    public LossFunction LossFunction => _map.LossFunction;

    public double MaxAbsTarget => _map.MaxAbsTarget;

    public Models.IDifferentiableModel Model => _map.Model;

    public Data.IDataSource Data => _map.Data;

    public CancellationToken Cancellation => _map.Cancellation;

    /// <summary>Calls of <see cref="SetPoint"/>: the problem's point moved through the interface, not the map's model.</summary>
    public int Moves { get; private set; }

    public Tensor GetPoint() => _map.GetPoint();

    public void SetPoint(Tensor point)
    {
        Moves++;
        _map.SetPoint(point);
    }

    public Tensor Residuals() => _map.Residuals();

    public double Loss() => _map.Loss();

    public Tensor Gradient() => _map.Gradient();

    public (double Loss, Tensor Gradient) LossAndGradient() => _map.LossAndGradient();

    public (double Loss, Tensor Gradient) RowsLossAndGradient(long[] rows) => _map.RowsLossAndGradient(rows);

    public Tensor HessianTimes(Tensor block) => _map.HessianTimes(block);

    public Tensor GaussNewtonTimes(Tensor block) => _map.GaussNewtonTimes(block);

    public Tensor JacobianTimes(Tensor block) => _map.JacobianTimes(block);

    public Tensor JacobianTransposeTimes(Tensor block) => _map.JacobianTransposeTimes(block);

    public Tensor Jacobian() => _map.Jacobian();

    public IReadOnlyList<(Tensor Inputs, Tensor Deltas)>? GramFactors() => _map.GramFactors();
}

/// <summary>
/// <see cref="IResidualProblem"/>: training, the projection onto M and the walk run on any problem (a cluster session in
/// production) and take exactly the steps they take on a <see cref="ResidualMap"/>.
/// </summary>
public sealed class ResidualProblemTests
{
    private static NetworkCase Case(string name) => Cases.Mlps().First(c => c.Name.StartsWith(name, StringComparison.Ordinal));

    [Theory]
    [InlineData("gd")]
    [InlineData("lbfgs")]
    [InlineData("gauss-newton")]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void Training_A_Problem_That_Is_Not_A_Map_Takes_The_Map_Steps_Exactly(string optimizer)
    {
        var c = Case("mlp 3-4-3-3");
        using var scope = NewDisposeScope();
        Optimizer Create() => optimizer switch
        {
            "gd" => new GradientDescent(),
            "lbfgs" => new Lbfgs(),
            "sgd" => new StochasticGradientDescent(new SgdOptions(BatchSize: 2, Seed: 3)),
            "adam" => new Adam(new AdamOptions(BatchSize: 2, Seed: 3)),
            _ => new GaussNewton(),
        };
        using var modelA = new NetworkModel(c.Network, c.Parameters);
        using var mapA = new ResidualMap(modelA, c.Data);
        using var a = Create();
        var single = Trainer.Run(mapA, a, new TrainingOptions(8));
        using var modelB = new NetworkModel(c.Network, c.Parameters);
        using var mapB = new ResidualMap(modelB, c.Data);
        var problem = new DelegatingProblem(mapB);
        using var b = Create();
        var general = Trainer.Run(problem, b, new TrainingOptions(8));
        Assert.True(optimizer is "sgd" or "adam" || single.BestLoss < single.InitialLoss * 0.9, $"{optimizer}: training did not reduce L ({single.InitialLoss:G3} → {single.BestLoss:G3})");
        Assert.True(problem.Moves > 0, "the trainer did not move the problem through the interface");
        Assert.Equal(single.LossHistory, general.LossHistory);
        Assert.Equal(single.BestParameters, general.BestParameters);
        Assert.Equal(single.Status, general.Status);
        Assert.Equal(single.Evaluations, general.Evaluations);
        Assert.Equal(single.BestParameters, ParameterVector.Get(modelB).data<double>().ToArray());
    }

    [Fact]
    public void The_Walk_And_The_Projection_On_A_Problem_That_Is_Not_A_Map_Are_The_Map_Ones()
    {
        var c = Case("mlp 3-5-3 tanh");
        using var scope = NewDisposeScope();
        var tolerance = 1e-10 * Math.Max(1, c.Data.MaxAbsTarget());
        double[] Start()
        {
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            var projected = GaussNewtonProjection.Project(map, new GaussNewtonOptions(tolerance, MaxIterations: 300));
            Assert.Equal(SolverStatus.Converged, projected.Status);
            return ParameterVector.Get(model).data<double>().ToArray();
        }
        var start = Start();
        // The projection through the interface moves the same way.
        using (var model = new NetworkModel(c.Network, c.Parameters))
        using (var map = new ResidualMap(model, c.Data))
        {
            var general = GaussNewtonProjection.Project(new DelegatingProblem(map), new GaussNewtonOptions(tolerance, MaxIterations: 300));
            Assert.Equal(start, ParameterVector.Get(model).data<double>().ToArray());
            Assert.Equal(SolverStatus.Converged, general.Status);
        }
        foreach (JacobianRoute? route in new JacobianRoute?[] { null, JacobianRoute.Gram })
        {
            var options = new WalkOptions(Steps: 4, StepSize: 0.05, Seed: 5, Tolerance: tolerance, Route: route ?? JacobianRoute.Auto);
            using var modelA = new NetworkModel(c.Network, start);
            using var mapA = new ResidualMap(modelA, c.Data);
            using var modelB = new NetworkModel(c.Network, start);
            using var mapB = new ResidualMap(modelB, c.Data);
            // The map's own walk on its own route; and the same through the interface, on that route or forced onto the Gram route.
            var single = ManifoldWalk.Run(mapA, options);
            var problem = new DelegatingProblem(mapB);
            var general = ManifoldWalk.Run(problem, options);
            Assert.Equal(SolverStatus.Converged, single.Status);
            Assert.Equal(single.Steps, general.Steps);
            Assert.True(single.Steps[^1].Displacement > options.StepSize, $"the walk did not travel: ‖p − p₀‖ = {single.Steps[^1].Displacement:G3}");
            Assert.All(single.Steps, s => Assert.Equal(c.Data.Count * c.Data.OutputDim, s.Rank));
            Assert.Equal(ParameterVector.Get(modelA).data<double>().ToArray(), ParameterVector.Get(modelB).data<double>().ToArray());
        }
    }
}
