using LossLandscape.Operators;
using LossLandscape.Cluster;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Orleans.TestingHost;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// A silo killed in the middle of a Lanczos run, at a fixed product, and another started: the run completes with the
/// single-process eigenvalues and records the retry. Its own 3-silo cluster (the shared one must keep its silos).
/// </summary>
public sealed class ClusterRestartTests
{
    /// <summary>The product at which the silo of shard 1 is killed: the 5th, well inside a run of about 20.</summary>
    private const int KillAtProduct = 5;

    /// <summary>Wraps an operator and runs <c>Before</c> once, just before its <c>At</c>-th application.</summary>
    private sealed class Interrupting(LinearOperator inner, int at, Action before) : LinearOperator(inner.Rows, inner.Columns, inner.DType, inner.Device, inner.IsSymmetric)
    {
        private int _count;

        protected override Tensor ApplyCore(Tensor v)
        {
            if (++_count == at)
            {
                before();
            }
            return inner.Apply(v);
        }
    }

    /// <summary>A cluster of its own (silos are killed), configured as the shared fixture's.</summary>
    private static async Task<TestCluster> StartClusterAsync()
    {
        TorchRuntime.EnsureInitialized();
        var builder = new TestClusterBuilder(OrleansClusterFixture.Silos);
        builder.AddSiloBuilderConfigurator<OrleansClusterFixture.SiloSetup>();
        builder.AddClientBuilderConfigurator<OrleansClusterFixture.ClientSetup>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    [Fact]
    public async Task A_Silo_Killed_Mid_Lanczos_Is_Retried_After_Reactivation_And_The_Eigenvalues_Are_Unchanged()
    {
        await using var cluster = await StartClusterAsync();

        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(6, ActivationRegistry.Default)], data.OutputDim);
        var parameters = mlp.InitialParameters(4);
        var config = OrleansClusterFixture.Config with { CallTimeoutSeconds = 5, RetryWindowSeconds = 60 };
        var session = new ClusterSession(cluster.Client, config, new DataSource("builtin:digits", [], "digit"), data, new NetworkPoint(mlp, parameters));
        session.Open();
        string victim = session.Silos[1];
        var handle = cluster.GetActiveSilos().Single(s => s.SiloAddress.ToString() == victim);

        var options = new LanczosOptions(K: 5, MaxIterations: 60, Seed: 1);
        var distributed = Lanczos.Eigenpairs(new Interrupting(new HessianOperator(session), KillAtProduct, () =>
        {
            cluster.KillSiloAsync(handle).GetAwaiter().GetResult();
            cluster.StartAdditionalSiloAsync().GetAwaiter().GetResult();
        }), options);

        using var scope = NewDisposeScope();
        using var model = new NetworkModel(mlp, parameters);
        using var map = new ResidualMap(model, data);
        var single = Lanczos.Eigenpairs(new HessianOperator(map), options);
        for (int i = 0; i < 5; i++)
        {
            Assert.True(Math.Abs(single.Eigenvalues[i] - distributed.Eigenvalues[i]) <= Tolerances.DistributedRestartAgreement * Math.Abs(single.Eigenvalues[0]),
                $"λ{i}: {single.Eigenvalues[i]:R} single, {distributed.Eigenvalues[i]:R} distributed");
        }
        Assert.Contains(session.Retries, r => r.Shard == 1);
        Assert.NotEqual(victim, session.Silos[1]);
    }

    [Fact]
    public async Task A_Cluster_That_Never_Comes_Back_Fails_The_Run_Naming_A_Shard_And_The_Cli_Exits_1()
    {
        await using var cluster = await StartClusterAsync();

        var c = Cases.Mlps().First();
        // A short window: 2 s, so the run gives up after the first timed-out attempt or two.
        var config = OrleansClusterFixture.Config with { CallTimeoutSeconds = 2, RetryWindowSeconds = 2 };
        var session = new ClusterSession(cluster.Client, config, new DataSource(c.Data.Source, []), c.Data, new NetworkPoint(c.Network, c.Parameters));
        session.Open();
        foreach (var silo in cluster.GetActiveSilos().ToArray())
        {
            await cluster.KillSiloAsync(silo);
        }
        var e = Assert.Throws<ShardUnavailableException>(() => session.Gradient());
        Assert.Matches(@"^shard \d+ did not answer Gradient", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        using var stderr = new StringWriter();
        Assert.Equal(LossLandscape.Cli.LandscapeApp.Failure, LossLandscape.Cli.LandscapeApp.Report(e, stderr));
        Assert.Equal($"landscape: error: {e.Message}", stderr.ToString().TrimEnd());
    }
}
