using LossLandscape.Cluster;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// <c>walk --cluster</c>: the walk on M (<see cref="ManifoldWalk.Run"/>) on a <see cref="ClusterSession"/> (J factored by its
/// SVD, its rows gathered from the shards, when it fits the driver, else by the Gram matrix of the shards' factors; every
/// residual, JV and JᵀW computed on the shards) walks where the single-process walk on the same route walks (issue 12 §1).
/// </summary>
[Collection(OrleansClusterCollection.Name)]
public sealed class ClusterWalkTests(OrleansClusterFixture fixture)
{
    /// <summary>
    /// Walk records and end points, distributed against single-process on the same route, relative: 1e-8. The tangent steps
    /// agree to the sum-order differences of K and Jᵀw (~1e-15); each retraction ends anywhere within its tolerance (1e-10 on
    /// max|H|), which moves the point by about that much times ‖J⁺‖, far below this and far above rounding.
    /// </summary>
    private const double WalkAgreement = 1e-8;

    [Theory]
    [InlineData(JacobianRoute.Auto)]
    [InlineData(JacobianRoute.Gram)]
    public void Distributed_Walk_Is_The_Single_Process_Walk_On_The_Same_Route(JacobianRoute route)
    {
        foreach (var c in Cases.Mlps().Where(c => c.Name is "mlp 3-5-1 tanh" or "mlp 3-5-3 tanh"))
        {
            using var scope = NewDisposeScope();
            double tolerance = 1e-10 * Math.Max(1, c.Data.MaxAbsTarget());
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            Assert.Equal(SolverStatus.Converged, GaussNewtonProjection.Project(map, new GaussNewtonOptions(tolerance, MaxIterations: 300)).Status);
            var start = ParameterVector.Get(model).data<double>().ToArray();
            var options = new WalkOptions(Steps: 4, StepSize: 0.05, Seed: 11, Tolerance: tolerance, Route: route);
            // Auto: the map's own walk (J small: its SVD) against the session's (J gathered from the shards' rows, its SVD).
            // Gram: both on the Gram route (K = JJᵀ; on the cluster from the shards' per-layer factors).
            var single = ManifoldWalk.Run(map, options);
            var session = fixture.OpenSession(c, start);
            Assert.Equal(JacobianRoute.Svd, JacobianFactorization.ChooseRoute(session));
            var distributed = ManifoldWalk.Run(session, options);
            Assert.Equal(SolverStatus.Converged, single.Status);
            Assert.Equal(SolverStatus.Converged, distributed.Status);
            Assert.Equal(single.Steps.Count, distributed.Steps.Count);
            Assert.True(single.Steps[^1].Displacement > options.StepSize, $"{c.Name}: the walk did not travel");
            for (int s = 0; s < single.Steps.Count; s++)
            {
                var (a, b) = (single.Steps[s], distributed.Steps[s]);
                Assert.Equal(c.Data.Count * c.Data.OutputDim, b.Rank);
                Assert.Equal(a.Rank, b.Rank);
                Assert.True(b.MaxAbsResidual <= tolerance, $"{c.Name}, step {s}: max|H| = {b.MaxAbsResidual:G3} on the cluster");
                Assert.True(Math.Abs(a.Displacement - b.Displacement) <= WalkAgreement * Math.Max(1, a.Displacement), $"{c.Name}, step {s}: ‖p − p₀‖ {a.Displacement:R} here, {b.Displacement:R} on the cluster");
                Assert.True(Math.Abs(a.PathLength - b.PathLength) <= WalkAgreement * Math.Max(1, a.PathLength), $"{c.Name}, step {s}: path length {a.PathLength:R} here, {b.PathLength:R} on the cluster");
            }
            var end = ParameterVector.Get(model).data<double>().ToArray();
            for (int i = 0; i < end.Length; i++)
            {
                Assert.True(Math.Abs(end[i] - session.Point[i]) <= WalkAgreement * Math.Max(1, Math.Abs(end[i])), $"{c.Name}: end point p[{i}]: {end[i]:R} here, {session.Point[i]:R} on the cluster");
            }
        }
    }

    [Fact]
    public void Walk_With_Cluster_Walks_On_M_Like_The_Local_Walk()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-walk-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir);
            string[] data = ["--data", "synthetic:12,3,1,4"];
            string point = Path.Combine(dir, "c.json");
            var (code, _, err) = CliTests.Run(["construct", .. data, "--out", point]);
            Assert.True(code == 0, err);
            string[] walk = ["walk", "--model", point, .. data, "--steps", "3", "--seed", "2"];
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json"), end = Path.Combine(dir, "end.json");
            (code, _, err) = CliTests.Run([.. walk, "--json", local]);
            Assert.True(code == 0, err);
            (code, _, err) = CliTests.Run([.. walk, "--cluster", file, "--json", remote, "--out", end]);
            Assert.True(code == 0, err);
            Assert.True(File.Exists(end), "walk --cluster --out wrote no end point");
            using var a = System.Text.Json.JsonDocument.Parse(File.ReadAllText(local));
            using var b = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote));
            Assert.Equal("converged", b.RootElement.GetProperty("status").GetString());
            Assert.Equal(3, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
            var (stepsA, stepsB) = (a.RootElement.GetProperty("steps").EnumerateArray().ToArray(), b.RootElement.GetProperty("steps").EnumerateArray().ToArray());
            Assert.Equal(stepsA.Length, stepsB.Length);
            Assert.True(stepsB[^1].GetProperty("displacement").GetDouble() > 0, "walk --cluster did not travel");
            for (int s = 0; s < stepsA.Length; s++)
            {
                Assert.Equal(12, stepsB[s].GetProperty("rank").GetInt32());
                Assert.Equal(stepsA[s].GetProperty("rank").GetInt32(), stepsB[s].GetProperty("rank").GetInt32());
                // Both factor J by its SVD (the cluster gathers J's rows from the shards): the same steps up to the order of the sums.
                double x = stepsA[s].GetProperty("displacement").GetDouble(), y = stepsB[s].GetProperty("displacement").GetDouble();
                Assert.True(Math.Abs(x - y) <= WalkAgreement * Math.Max(1, x), $"step {s}: ‖p − p₀‖ {x:R} here, {y:R} on the cluster");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
