using LossLandscape.Operators;
using LossLandscape.Cluster;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Microsoft.Extensions.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// One in-process Orleans cluster of three silos (Orleans' TestingHost), shared by every test of <see cref="ClusterTests"/>.
/// Its chunk size is tiny (1 KiB), so that every vector of the tests travels in several chunks both ways.
/// </summary>
public sealed class OrleansClusterFixture : IAsyncLifetime
{
    /// <summary>Silos in the test cluster: three, issue 12 §3.</summary>
    public const short Silos = 3;

    /// <summary>A chunk of 1 KiB (128 doubles): smaller than every Hessian block of the tests, so chunking is always exercised.</summary>
    public const int TestChunkBytes = 1024;

    /// <summary>The configuration of the silos, the client and the sessions (3 shards, tiny chunks, short retry window).</summary>
    public static ClusterConfig Config { get; } = ClusterConfig.Localhost(Silos) with { ChunkBytes = TestChunkBytes, CallTimeoutSeconds = 60, RetryWindowSeconds = 10 };

    /// <summary>The running cluster.</summary>
    public TestCluster Cluster { get; private set; } = null!;

    /// <summary>Starts the silos.</summary>
    public async Task InitializeAsync()
    {
        TorchRuntime.EnsureInitialized();
        var builder = new TestClusterBuilder(Silos);
        // Real sockets, so that the CLI's own client (Evaluate_And_Spectrum_With_Cluster_…) can join through the gateways.
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.AddSiloBuilderConfigurator<SiloSetup>();
        builder.AddClientBuilderConfigurator<ClientSetup>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    /// <summary>Stops the silos.</summary>
    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    /// <summary>Writes <c>cluster.json</c> in <paramref name="dir"/>, naming this cluster's gateways, for the CLI's own client; returns its path.</summary>
    public string WriteClusterFile(string dir)
    {
        var options = Cluster.Options;
        var workers = Enumerable.Range(0, Silos).Select(i => new WorkerEndpoint(options.BaseSiloPort + i, options.BaseGatewayPort + i)).ToArray();
        string path = Path.Combine(dir, "cluster.json");
        File.WriteAllText(path, (Config with { ClusterId = options.ClusterId, ServiceId = options.ServiceId, Workers = workers }).ToJson());
        return path;
    }

    /// <summary>An open session over a case's data (the workers read it from its source) at <paramref name="parameters"/> (default: the case's).</summary>
    public ClusterSession OpenSession(NetworkCase c, double[]? parameters = null)
    {
        var session = new ClusterSession(Cluster.Client, Config, new DataSource(c.Data.Source, []), c.Data, new NetworkPoint(c.Network, parameters ?? c.Parameters));
        session.Open();
        return session;
    }

    /// <summary>The silos' messaging and placement, as a worker's (<see cref="ClusterHosting.ConfigureWorker"/>).</summary>
    internal sealed class SiloSetup : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            ClusterHosting.ConfigureMessaging(siloBuilder.Services, Config);
            ClusterHosting.ConfigurePlacement(siloBuilder.Services);
        }
    }

    /// <summary>The client's messaging and gateway watch, as the driver's.</summary>
    internal sealed class ClientSetup : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder)
        {
            ClusterHosting.ConfigureMessaging(clientBuilder.Services, Config);
            ClusterHosting.WatchGateways(clientBuilder);
        }
    }
}

/// <summary>The test collection that shares <see cref="OrleansClusterFixture"/>.</summary>
[CollectionDefinition(Name)]
public sealed class OrleansClusterCollection : ICollectionFixture<OrleansClusterFixture>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Orleans cluster";
}

[Collection(OrleansClusterCollection.Name)]
public sealed class ClusterTests(OrleansClusterFixture fixture)
{
    private ClusterSession Open(NetworkCase c) => Open(c.Network, c.Parameters, c.Data, new DataSource(c.Data.Source, []));

    private ClusterSession Open(FeedforwardNetwork network, double[] parameters, Dataset data, DataSource source)
    {
        var session = new ClusterSession(fixture.Cluster.Client, OrleansClusterFixture.Config, source, data, new NetworkPoint(network, parameters));
        session.Open();
        return session;
    }

    private static void Close(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double scale = Math.Max(1.0, expected.abs().max().item<double>());
        double error = (expected - actual).abs().max().item<double>();
        Assert.True(error <= Tolerances.DistributedAgreement * scale, $"{what}: max error {error:G3} against scale {scale:G3}");
    }

    /// <summary>L, ∇L, H, Hv, Gv, Jv and Jᵀw for a block of 3 vectors, distributed over 3 shards, on a case of the table.</summary>
    internal static void AssertSumsAgree(ClusterSession session, ResidualMap map, string name)
    {
        using var scope = NewDisposeScope();
        int n = map.ParameterCount, m = map.Constraints;
        var generator = new Generator(7);
        var v = randn(n, 3, dtype: ScalarType.Float64, generator: generator);
        var w = randn(m, 3, dtype: ScalarType.Float64, generator: generator);
        double loss = map.Loss();
        Assert.True(Math.Abs(session.Loss() - loss) <= Tolerances.DistributedAgreement * Math.Max(1.0, loss), $"{name}: L");
        Close(map.Gradient(), session.Gradient(), $"{name}: ∇L");
        Close(map.Residuals(), session.Residuals(), $"{name}: H");
        Close(new HessianOperator(map).ApplyMatrix(v), new HessianOperator(session).ApplyMatrix(v), $"{name}: ∇²L V");
        Close(new GaussNewtonOperator(map).ApplyMatrix(v), new GaussNewtonOperator(session).ApplyMatrix(v), $"{name}: G V");
        Close(new JacobianOperator(map).ApplyMatrix(v), new JacobianOperator(session).ApplyMatrix(v), $"{name}: J V");
        Close(new JacobianTransposeOperator(map).ApplyMatrix(w), new JacobianOperator(session).Adjoint().ApplyMatrix(w), $"{name}: Jᵀ W");
        Close(new HessianOperator(map).Apply(v.select(1, 0)), new HessianOperator(session).Apply(v.select(1, 0)), $"{name}: ∇²L v");
        Close(map.Jacobian(), session.Jacobian(), $"{name}: J");
        // A mini-batch's rows spread over the shards (and one shard's rows only): the same sum as in one process.
        long[] rows = [0, (long)map.Rows - 1, map.Rows / 2, 1];
        var (batchLoss, batchGradient) = map.RowsLossAndGradient(rows);
        var (shardLoss, shardGradient) = session.RowsLossAndGradient(rows);
        Assert.True(Math.Abs(shardLoss - batchLoss) <= Tolerances.DistributedAgreement * Math.Max(1.0, batchLoss), $"{name}: mini-batch L");
        Close(batchGradient, shardGradient, $"{name}: mini-batch ∇L");
        Close(map.RowsLossAndGradient([0]).Gradient, session.RowsLossAndGradient([0]).Gradient, $"{name}: one row's ∇L");
    }

    [Fact]
    public void Distributed_Loss_Gradient_And_Products_Equal_Single_Process_On_The_Case_Table()
    {
        // One MLP and one DAG per activation (ℓ = 3 for the MLPs, ℓ = 1 for the DAGs): every layer type and both output counts.
        var cases = Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-4-3-3", StringComparison.Ordinal))
            .Concat(Cases.Dags().Where(c => c.Name.EndsWith("ℓ=1", StringComparison.Ordinal))).ToArray();
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            AssertSumsAgree(Open(c), map, c.Name);
        }
    }

    [Fact]
    public void Shards_Summing_Their_Rows_In_Batches_Equal_Single_Process_All_Rows()
    {
        // Issue 20 §2 on the cluster backend: each shard takes its rows B at a time; the sums equal the all-rows ones here.
        var c = Cases.Mlps().First(c => c.Name.StartsWith("mlp 3-4-3-3", StringComparison.Ordinal));
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data, batchSize: c.Data.Count);
        foreach (int batch in new[] { 1, 2 })
        {
            var session = new ClusterSession(fixture.Cluster.Client, OrleansClusterFixture.Config, new DataSource(c.Data.Source, []), c.Data,
                new NetworkPoint(c.Network, c.Parameters), batchSize: batch);
            session.Open();
            AssertSumsAgree(session, map, $"{c.Name}, B = {batch}");
        }
    }

    [Fact]
    public void Distributed_Gram_Matrix_From_Shard_Factors_Equals_Single_Process()
    {
        foreach (var c in Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-5-3", StringComparison.Ordinal)).Take(2))
        {
            using var scope = NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            var session = Open(c);
            Close(GramMatrix.Compute(map), GramMatrix.Compute(session), $"{c.Name}: JJᵀ");
            var j = map.Jacobian();
            Close(j.matmul(j.t()), GramMatrix.Compute(session), $"{c.Name}: JJᵀ from J");
        }
    }

    [Fact]
    public void Distributed_Products_And_Lanczos_Top_5_Equal_Single_Process_On_Digits()
    {
        using var scope = NewDisposeScope();
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(6, ActivationRegistry.Default)], data.OutputDim);
        var parameters = mlp.InitialParameters(3);
        using var model = new NetworkModel(mlp, parameters);
        using var map = new ResidualMap(model, data);
        var session = Open(mlp, parameters, data, new DataSource("builtin:digits", [], "digit"));
        Assert.Equal([0, 599, 1198], session.Ranges.Select(r => r.First));
        AssertSumsAgree(session, map, "digits");

        var options = new LanczosOptions(K: 5, MaxIterations: 60, Seed: 1);
        var single = Lanczos.Eigenpairs(new HessianOperator(map), options);
        var distributed = Lanczos.Eigenpairs(new HessianOperator(session), options);
        Assert.Equal(5, distributed.Eigenvalues.Count);
        for (int i = 0; i < 5; i++)
        {
            Assert.True(Math.Abs(single.Eigenvalues[i] - distributed.Eigenvalues[i]) <= Tolerances.DistributedAgreement * Math.Abs(single.Eigenvalues[0]),
                $"λ{i}: {single.Eigenvalues[i]:R} single, {distributed.Eigenvalues[i]:R} distributed");
        }
        Assert.Empty(session.Retries);
        Assert.Equal(single.Applications, distributed.Applications);
        Assert.True(session.Timings.BytesReceived > 0 && session.Timings.Calls > distributed.Iterations);
    }

    [Fact]
    public void A_New_Point_Version_Reaches_Every_Shard_Before_Any_Sum()
    {
        var c = Cases.Mlps().First();
        var session = Open(c);
        var moved = c.Parameters.Select((p, i) => p + 0.01 * (i % 5 - 2)).ToArray();
        using var scope = NewDisposeScope();
        session.SetPoint(tensor(moved, ScalarType.Float64));
        Assert.Equal(1, session.Version);
        using var model = new NetworkModel(c.Network, moved);
        using var map = new ResidualMap(model, c.Data);
        Assert.True(Math.Abs(session.Loss() - map.Loss()) <= Tolerances.DistributedAgreement * Math.Max(1.0, map.Loss()));
        Close(map.Gradient(), session.Gradient(), "∇L at the new point");
    }

    [Fact]
    public async Task A_Shard_Refuses_A_Request_For_Another_Point_Version_And_Answers_NotLoaded_When_Fresh()
    {
        var grain = fixture.Cluster.Client.GetGrain<IShardGrain>($"fresh-{Guid.NewGuid():N}/0");
        var fresh = await grain.Compute(new ShardRequest { Quantity = ShardQuantity.Loss, Version = 0, ResultPayload = "r" });
        Assert.Equal(ShardStatus.NotLoaded, fresh.Status);

        var c = Cases.Mlps().First();
        var session = Open(c);
        var loaded = fixture.Cluster.Client.GetGrain<IShardGrain>($"{session.Id}/1");
        var stale = await loaded.Compute(new ShardRequest { Quantity = ShardQuantity.Loss, Version = 5, ResultPayload = "r" });
        Assert.Equal(ShardStatus.OtherVersion, stale.Status);
        Assert.Equal(0, stale.Version);
        Assert.Empty(stale.FirstChunk);
    }

    [Fact]
    public void More_Shards_Than_Rows_Or_Other_Data_On_The_Workers_Is_Bad_Input()
    {
        var c = Cases.Mlps().First();
        var point = new NetworkPoint(c.Network, c.Parameters);
        var tooMany = OrleansClusterFixture.Config with { Shards = c.Data.Count + 1 };
        var e = Assert.Throws<LandscapeInputException>(() => new ClusterSession(fixture.Cluster.Client, tooMany, new DataSource(c.Data.Source, []), c.Data, point));
        Assert.Contains("shards", e.Message);

        // The workers read synthetic data of another seed: same shape, other rows.
        var other = new DataSource($"synthetic:{c.Data.Count},{c.Data.InputDim},{c.Data.OutputDim},999", []);
        var session = new ClusterSession(fixture.Cluster.Client, OrleansClusterFixture.Config, other, c.Data, point);
        var mismatch = Assert.Throws<LandscapeInputException>(session.Open);
        Assert.Contains("not the same data", mismatch.Message);
        Assert.DoesNotContain('\n', mismatch.Message);
    }

    /// <summary>A cluster file that names the test cluster's gateways, for the CLI's own client.</summary>
    private string TestClusterFile(string dir) => fixture.WriteClusterFile(dir);

    [Fact]
    public void Evaluate_Spectrum_And_Trace_With_Cluster_Print_The_Single_Process_Numbers()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-cli-").FullName;
        try
        {
            string file = TestClusterFile(dir), model = Path.Combine(dir, "m.json");
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "4", "--out", model]).Code);
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json");
            Assert.Equal(0, CliTests.Run(["evaluate", "--model", model, .. data, "--json", local]).Code);
            var (code, _, err) = CliTests.Run(["evaluate", "--model", model, .. data, "--cluster", file, "--json", remote]);
            Assert.True(code == 0, err);
            using (var a = System.Text.Json.JsonDocument.Parse(File.ReadAllText(local)))
            using (var b = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote)))
            {
                foreach (var field in new[] { "loss", "maxAbsResidual", "gradientNorm" })
                {
                    double x = a.RootElement.GetProperty(field).GetDouble(), y = b.RootElement.GetProperty(field).GetDouble();
                    Assert.True(Math.Abs(x - y) <= Tolerances.DistributedAgreement * Math.Max(1.0, Math.Abs(x)), $"{field}: {x:R} here, {y:R} on the cluster");
                }
                Assert.Equal(3, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
                Assert.False(a.RootElement.TryGetProperty("cluster", out _));
            }
            Assert.Contains("loaded on", err);

            string[] spectrum = ["spectrum", "--model", model, .. data, "--k", "3", "--seed", "2"];
            Assert.Equal(0, CliTests.Run([.. spectrum, "--json", local]).Code);
            (code, _, err) = CliTests.Run([.. spectrum, "--cluster", file, "--json", remote]);
            Assert.True(code == 0, err);
            using (var a = System.Text.Json.JsonDocument.Parse(File.ReadAllText(local)))
            using (var b = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote)))
            {
                var x = a.RootElement.GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var y = b.RootElement.GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                Assert.Equal(x.Length, y.Length);
                for (int i = 0; i < x.Length; i++)
                {
                    Assert.True(Math.Abs(x[i] - y[i]) <= Tolerances.DistributedAgreement * Math.Abs(x[0]), $"λ{i}: {x[i]:R} here, {y[i]:R} on the cluster");
                }
                Assert.Equal(0, b.RootElement.GetProperty("cluster").GetProperty("retries").GetInt32());
            }

            string[] trace = ["trace", "--model", model, .. data, "--method", "hutchinson", "--probes", "12", "--seed", "3"];
            Assert.Equal(0, CliTests.Run([.. trace, "--json", local]).Code);
            (code, _, err) = CliTests.Run([.. trace, "--cluster", file, "--json", remote]);
            Assert.True(code == 0, err);
            using (var a = System.Text.Json.JsonDocument.Parse(File.ReadAllText(local)))
            using (var b = System.Text.Json.JsonDocument.Parse(File.ReadAllText(remote)))
            {
                double x = a.RootElement.GetProperty("trace").GetDouble(), y = b.RootElement.GetProperty("trace").GetDouble();
                Assert.True(Math.Abs(x - y) <= Tolerances.DistributedAgreement * Math.Abs(x), $"trace: {x:R} here, {y:R} on the cluster");
                Assert.Equal(a.RootElement.GetProperty("hessianVectorProducts").GetInt64(), b.RootElement.GetProperty("hessianVectorProducts").GetInt64());
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_Chunk_That_Would_Not_Fit_A_Message_Is_Refused_With_One_Line()
    {
        var bad = ClusterConfig.Localhost(2) with { ChunkBytes = ClusterConfig.DefaultMaxMessageBytes };
        var e = Assert.Throws<LandscapeInputException>(() => bad.Validate("test.json"));
        Assert.Contains("chunkBytes", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(3, VectorBytes.Split(new byte[2 * OrleansClusterFixture.TestChunkBytes + 8], OrleansClusterFixture.TestChunkBytes).Length);
    }
}
