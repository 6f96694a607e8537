using LossLandscape.Cluster;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// <c>train --cluster</c> and <see cref="DistributedTraining"/>: gradient descent with L and ∇L summed on the shards takes
/// the single-process steps, so the losses agree step by step (issue 12 §1).
/// </summary>
[Collection(OrleansClusterCollection.Name)]
public sealed class ClusterTrainTests(OrleansClusterFixture fixture)
{
    /// <summary>Steps compared: 6, enough for the losses to move by orders of magnitude more than the tolerance.</summary>
    private const int Steps = 6;

    private static void SameHistory(IReadOnlyList<double> single, IReadOnlyList<double> distributed, string what)
    {
        Assert.Equal(single.Count, distributed.Count);
        for (int i = 0; i < single.Count; i++)
        {
            Assert.True(Math.Abs(single[i] - distributed[i]) <= Tolerances.DistributedTrainingAgreement * Math.Abs(single[i]),
                $"{what}: L after step {i}: {single[i]:R} single, {distributed[i]:R} distributed");
        }
    }

    [Fact]
    public void Loss_And_Gradient_Come_From_One_Round_Of_Shard_Calls_And_Equal_The_Single_Process_Pass()
    {
        // Every line-search trial of L-BFGS and every gradient-descent step asks for both: one call per shard, not two.
        foreach (var c in Cases.Mlps().Take(4))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            var (loss, gradient) = ((IResidualProblem)map).LossAndGradient();
            var session = fixture.OpenSession(c);
            int calls = session.Timings.Calls;
            var (distributedLoss, distributedGradient) = session.LossAndGradient();
            Assert.Equal(calls + 1, session.Timings.Calls);
            Assert.True(Math.Abs(loss - distributedLoss) <= Tolerances.DistributedAgreement * Math.Max(1.0, loss), $"{c.Name}: L {loss:R} here, {distributedLoss:R} on the cluster");
            double scale = Math.Max(1.0, gradient.abs().max().item<double>());
            double difference = (gradient - distributedGradient).abs().max().item<double>();
            Assert.True(difference <= Tolerances.DistributedAgreement * scale, $"{c.Name}: ∇L differs by {difference:G3} (scale {scale:G3})");
        }
    }

    [Fact]
    public void Distributed_Gradient_Descent_Takes_The_Single_Process_Steps()
    {
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-5-3", StringComparison.Ordinal)).Take(2))
        {
            foreach (double? rate in new double?[] { null, 0.01 })
            {
                using var scope = NewDisposeScope();
                using var model = new NetworkModel(c.Network, c.Parameters);
                using var map = new ResidualMap(model, c.Data);
                using var gd = new GradientDescent(new GradientDescentOptions(rate));
                var single = Trainer.Run(map, gd, new TrainingOptions(Steps));
                var session = fixture.OpenSession(c);
                using var gdOnCluster = new GradientDescent(new GradientDescentOptions(rate));
                var distributed = Trainer.Run(session, gdOnCluster, new TrainingOptions(Steps));
                string what = $"{c.Name}, η = {rate?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "1/λmax"}";
                Assert.Equal(single.Steps, distributed.Steps);
                Assert.Equal(single.Status, distributed.Status);
                Assert.True(single.LossHistory[^1] < single.LossHistory[0] * (1 - 1e-6), $"{what}: single-process training did not move");
                SameHistory(single.LossHistory, distributed.LossHistory, what);
                Assert.Equal(single.BestStep, distributed.BestStep);
                // The session ends at the best point, as the single-process model does.
                for (int i = 0; i < single.BestParameters.Length; i++)
                {
                    Assert.True(Math.Abs(single.BestParameters[i] - session.Point[i]) <= Tolerances.DistributedTrainingAgreement * Math.Max(1.0, Math.Abs(single.BestParameters[i])), $"{what}: p[{i}]");
                }
            }
        }
    }

    [Theory]
    [InlineData("lbfgs")]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void Distributed_Lbfgs_Sgd_And_Adam_Take_The_Single_Process_Steps(string name)
    {
        // L-BFGS: the two-loop recursion on the driver, every line-search trial a distributed L and ∇L. SGD and Adam: the same
        // seeded draws of rows, each mini-batch's rows answered by the shards that hold them.
        Optimizer Create() => name switch
        {
            "lbfgs" => new Lbfgs(),
            "sgd" => new StochasticGradientDescent(new SgdOptions(BatchSize: 3, Seed: 11)),
            _ => new Adam(new AdamOptions(LearningRate: 0.01, BatchSize: 3, Seed: 11)),
        };
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-4-3", StringComparison.Ordinal)).Take(2))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            using var here = Create();
            var single = Trainer.Run(map, here, new TrainingOptions(Steps, LossEvery: 1));
            var session = fixture.OpenSession(c);
            using var there = Create();
            var distributed = Trainer.Run(session, there, new TrainingOptions(Steps, LossEvery: 1));
            Assert.True(single.BestLoss < single.InitialLoss * 0.99, $"{c.Name}: {name} did not reduce L ({single.InitialLoss:G3} → {single.BestLoss:G3})");
            Assert.Equal(name, distributed.Optimizer);
            Assert.Equal(single.Status, distributed.Status);
            Assert.Equal(single.Evaluations, distributed.Evaluations);
            SameHistory(single.LossHistory, distributed.LossHistory, $"{c.Name}, {name}");
            for (int i = 0; i < single.BestParameters.Length; i++)
            {
                Assert.True(Math.Abs(single.BestParameters[i] - session.Point[i]) <= Tolerances.DistributedTrainingAgreement * Math.Max(1.0, Math.Abs(single.BestParameters[i])), $"{c.Name}: p[{i}]");
            }
        }
    }

    [Fact]
    public void Distributed_Gauss_Newton_Takes_The_Single_Process_Gram_Route_Steps()
    {
        // 3 Levenberg–Marquardt steps on the case table's small networks (losses fall by more than half,
        // still far above rounding) are compared.
        const int gaussNewtonSteps = 3;
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-5-3", StringComparison.Ordinal)).Take(2))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            // The single-process optimizer's Levenberg–Marquardt on the Gram route (eig of JJᵀ, steps by Jᵀ), step by step.
            var lm = new LevenbergMarquardt(LevenbergMarquardt.DefaultInitialDamping, LevenbergMarquardt.DefaultMaxDampingIncreases);
            var single = new List<double> { map.Loss() };
            for (int k = 0; k < gaussNewtonSteps; k++)
            {
                using var stepScope = NewDisposeScope();
                Assert.True(lm.Step(map, JacobianRoute.Gram, map.Residuals()).Accepted, $"{c.Name}: single-process step {k + 1} not accepted");
                single.Add(map.Loss());
            }
            var session = fixture.OpenSession(c);
            // A budget below the SVD route's bytes: the optimizer chooses the Gram route on the session, J never gathered.
            using var newton = new GaussNewton();
            var distributed = Trainer.Run(session, newton, new TrainingOptions(gaussNewtonSteps, TargetLoss: 0), new RunLimits(JacobianFactorization.RequiredBytes(map, JacobianRoute.Gram)));
            Assert.Equal(JacobianRoute.Gram, newton.Route);
            Assert.True(single[^1] < single[0] / 2, $"{c.Name}: Gauss–Newton did not reduce L (from {single[0]:G3} to {single[^1]:G3})");
            SameHistory(single, distributed.LossHistory, $"{c.Name}, gauss-newton");
        }
    }

    [Fact]
    public void Distributed_Gauss_Newton_Takes_The_Single_Process_Svd_Steps_When_J_Fits_The_Driver()
    {
        // The route rule: a small J is gathered from the shards' rows and factored by its SVD, as the single-process optimizer does.
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-5-3", StringComparison.Ordinal)).Take(2))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            using var newton = new GaussNewton();
            var single = Trainer.Run(map, newton, new TrainingOptions(3, TargetLoss: 0));
            Assert.Equal(JacobianRoute.Svd, newton.Route);
            var session = fixture.OpenSession(c);
            using var newtonOnCluster = new GaussNewton();
            var distributed = Trainer.Run(session, newtonOnCluster, new TrainingOptions(3, TargetLoss: 0));
            Assert.Equal(JacobianRoute.Svd, newtonOnCluster.Route);
            Assert.True(single.BestLoss < single.InitialLoss / 2, $"{c.Name}: Gauss–Newton did not reduce L");
            Assert.Contains("SVD", distributed.Settings, StringComparison.Ordinal);
            SameHistory(single.LossHistory, distributed.LossHistory, $"{c.Name}, gauss-newton (svd)");
        }
    }

    [Fact]
    public void Train_With_Cluster_Writes_The_Single_Process_Losses_For_Every_Optimizer()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-train-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir);
            string[] train = ["train", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "6", "--optimizer", "gd", "--steps", "5", "--seed", "3"];
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json");
            var (code, _, err) = CliTests.Run([.. train, "--out", Path.Combine(dir, "a.json"), "--json", local]);
            Assert.True(code == 0, err);
            (code, _, err) = CliTests.Run([.. train, "--out", Path.Combine(dir, "b.json"), "--cluster", file, "--json", remote]);
            Assert.True(code == 0, err);
            using var a = System.Text.Json.JsonDocument.Parse(File.ReadAllText(local));
            using var b = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote));
            SameHistory(a.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
                b.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray(), "train --cluster");
            Assert.Equal(3, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
            var newton = CliTests.Run([.. train.Select(a => a == "gd" ? "gauss-newton" : a), "--out", Path.Combine(dir, "d.json"), "--cluster", file, "--json", remote]);
            Assert.True(newton.Code == 0, newton.Err);
            using (var g = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote)))
            {
                Assert.Equal("gauss-newton", g.RootElement.GetProperty("optimizer").GetString());
                Assert.True(g.RootElement.GetProperty("bestLoss").GetDouble() < g.RootElement.GetProperty("initialLoss").GetDouble());
            }
            // L-BFGS: the same losses as without --cluster.
            string lbfgsLocal = Path.Combine(dir, "lbfgs-local.json"), lbfgsRemote = Path.Combine(dir, "lbfgs-remote.json");
            string[] quasiNewton = [.. train.Select(a => a == "gd" ? "lbfgs" : a)];
            (code, _, err) = CliTests.Run([.. quasiNewton, "--out", Path.Combine(dir, "e.json"), "--json", lbfgsLocal]);
            Assert.True(code == 0, err);
            (code, _, err) = CliTests.Run([.. quasiNewton, "--out", Path.Combine(dir, "f.json"), "--cluster", file, "--json", lbfgsRemote]);
            Assert.True(code == 0, err);
            using (var l = System.Text.Json.JsonDocument.Parse(File.ReadAllText(lbfgsLocal)))
            using (var r = System.Text.Json.JsonDocument.Parse(File.ReadAllText(lbfgsRemote)))
            {
                Assert.Equal("lbfgs", r.RootElement.GetProperty("optimizer").GetString());
                SameHistory(l.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
                    r.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray(), "train --cluster --optimizer lbfgs");
            }
            // The mini-batch methods with the same seed: the same rows drawn, the same losses.
            foreach (var optimizer in new[] { "sgd", "adam" })
            {
                string[] miniBatch = [.. train.Select(a => a == "gd" ? optimizer : a), "--batch-size", "16", "--loss-every", "1"];
                string localJson = Path.Combine(dir, $"{optimizer}-local.json"), remoteJson = Path.Combine(dir, $"{optimizer}-remote.json");
                (code, _, err) = CliTests.Run([.. miniBatch, "--out", Path.Combine(dir, $"{optimizer}-l.json"), "--json", localJson]);
                Assert.True(code == 0, err);
                (code, _, err) = CliTests.Run([.. miniBatch, "--out", Path.Combine(dir, $"{optimizer}-r.json"), "--cluster", file, "--json", remoteJson]);
                Assert.True(code == 0, err);
                using var l = System.Text.Json.JsonDocument.Parse(File.ReadAllText(localJson));
                using var r = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remoteJson));
                Assert.Equal(optimizer, r.RootElement.GetProperty("optimizer").GetString());
                Assert.True(r.RootElement.TryGetProperty("cluster", out _), $"{optimizer}: no cluster field");
                SameHistory(l.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
                    r.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray(), $"train --cluster --optimizer {optimizer}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
