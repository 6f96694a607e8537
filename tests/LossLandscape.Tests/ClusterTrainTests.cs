using LossLandscape.Cluster;
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
                var session = new ClusterSession(fixture.Cluster.Client, OrleansClusterFixture.Config, new DataSource(c.Data.Source, []), c.Data, new NetworkPoint(c.Network, c.Parameters));
                session.Open();
                var distributed = DistributedTraining.GradientDescent(session, new TrainingOptions(Steps), rate);
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
            var session = new ClusterSession(fixture.Cluster.Client, OrleansClusterFixture.Config, new DataSource(c.Data.Source, []), c.Data, new NetworkPoint(c.Network, c.Parameters));
            session.Open();
            var distributed = DistributedTraining.GaussNewtonSteps(session, new TrainingOptions(gaussNewtonSteps, TargetLoss: 0));
            Assert.True(single[^1] < single[0] / 2, $"{c.Name}: Gauss–Newton did not reduce L (from {single[0]:G3} to {single[^1]:G3})");
            SameHistory(single, distributed.LossHistory, $"{c.Name}, gauss-newton");
        }
    }

    [Fact]
    public void Train_With_Cluster_Writes_The_Single_Process_Losses_And_Refuses_Other_Optimizers()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-train-").FullName;
        try
        {
            var options = fixture.Cluster.Options;
            var workers = Enumerable.Range(0, OrleansClusterFixture.Silos).Select(i => new WorkerEndpoint(options.BaseSiloPort + i, options.BaseGatewayPort + i)).ToArray();
            string file = Path.Combine(dir, "cluster.json");
            File.WriteAllText(file, (OrleansClusterFixture.Config with { ClusterId = options.ClusterId, ServiceId = options.ServiceId, Workers = workers }).ToJson());
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
            var refused = CliTests.Run(["train", "--data", "builtin:iris", "--one-hot", "species", "--optimizer", "lbfgs", "--out", Path.Combine(dir, "c.json"), "--cluster", file]);
            Assert.Equal(2, refused.Code);
            Assert.Contains("--cluster", refused.Err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
