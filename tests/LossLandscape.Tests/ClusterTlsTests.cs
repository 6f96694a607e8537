using System.Globalization;
using System.Net;
using LossLandscape.Cluster;
using LossLandscape.Engine;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Connections.Security;
using Orleans.Hosting;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 22 §2, who may join and who may call a <c>cluster init --tls</c> cluster: one worker in this process (so that its
/// shard-grain calls can be counted by a grain-call filter) on 127.0.0.6, registered in a real Redis server. A client
/// without a certificate, a client without TLS, and a driver with a certificate of another authority are refused, and the
/// worker's grains are never called; a worker with another authority's certificate cannot join; each refusal of the CLI is
/// one line with exit 2. Without <c>--tls</c> a worker refuses an address other than loopback.
/// </summary>
[Collection(WorkerProcessesCollection.Name)]
public sealed class ClusterTlsTests : IDisposable
{
    /// <summary>How long a refused client is given to connect before the refusal is taken as given: 20 s, above the client's own attempts.</summary>
    private static readonly TimeSpan RefusedClientLimit = TimeSpan.FromSeconds(20);

    /// <summary>How long a refused worker may take to be told it cannot join: 120 s, Orleans' failure detection on a loaded machine and then some.</summary>
    private static readonly TimeSpan RefusedWorkerLimit = TimeSpan.FromSeconds(120);

    private readonly KillableCluster _processes = new(2, "landscape-tls-");

    private string PathOf(string name) => _processes.PathOf(name);

    /// <summary>Copies the cluster file to <paramref name="folder"/> with the authority of <paramref name="authorityFrom"/> and the certificates of <paramref name="certificatesFrom"/>.</summary>
    private string Impostor(string folder, string cluster, string authorityFrom, string certificatesFrom, int worker)
    {
        string dir = Directory.CreateDirectory(PathOf(folder)).FullName;
        string file = Path.Combine(dir, "cluster.json");
        File.Copy(cluster, file);
        File.Copy(ClusterCertificates.AuthorityPath(authorityFrom), ClusterCertificates.AuthorityPath(file));
        foreach (var (from, to) in new[] { (ClusterCertificates.DriverPaths(certificatesFrom), ClusterCertificates.DriverPaths(file)), (ClusterCertificates.WorkerPaths(certificatesFrom, worker), ClusterCertificates.WorkerPaths(file, worker)) })
        {
            File.Copy(from.Certificate, to.Certificate);
            File.Copy(from.Key, to.Key);
        }
        return file;
    }

    [SkippableFact]
    public async Task Only_Certificates_Of_The_Cluster_Authority_Join_Or_Call_And_Every_Refusal_Is_One_Line()
    {
        TorchRuntime.EnsureInitialized();
        using var redis = RedisServer.Start();
        string cluster = PathOf("cluster.json"), other = Directory.CreateDirectory(PathOf("other")).FullName;
        string basePort = KillableCluster.FreeBasePort(2).ToString(CultureInfo.InvariantCulture);
        foreach (var file in new[] { cluster, Path.Combine(other, "cluster.json") })
        {
            var init = CliTests.Run("cluster", "init", "--membership", "redis", "--redis", redis.Endpoint, "--workers", "2", "--base-port", basePort, "--tls", "--out", file);
            Assert.True(init.Code == 0, init.Err);
        }
        var config = ClusterConfig.Load(cluster);
        var authority = ClusterCertificates.ForDriver(cluster).Authority;

        // Worker 0 in this process, counting every call that reaches a shard grain.
        long calls = 0;
        using var worker = ClusterHosting.BuildWorker(config, 0, site: ClusterHosting.SiteOf(config, 0, "127.0.0.6"), identity: ClusterCertificates.ForWorker(cluster, 0),
            configure: silo => silo.AddIncomingGrainCallFilter(context =>
            {
                if (context.Grain is IShardGrain)
                {
                    Interlocked.Increment(ref calls);
                }
                return context.Invoke();
            }));
        await worker.StartAsync();
        try
        {
            string model = PathOf("m.json");
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "3", "--out", model]).Code);

            // A client with TLS but no certificate, and one without TLS: no connection, no call.
            foreach (var (name, tls) in new (string, Action<TlsOptions>?)[]
            {
                ("no certificate", o =>
                {
                    o.ClientCertificateMode = RemoteCertificateMode.AllowCertificate;
                    o.RemoteCertificateValidation = (c, _, _) => ClusterCertificates.Accepts(authority, c);
                }),
                ("no TLS", null),
            })
            {
                using var client = new HostBuilder().UseOrleansClient(c =>
                {
                    c.UseRedisClustering(redis.Endpoint);
                    c.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (config.ClusterId, config.ServiceId));
                    if (tls is not null)
                    {
                        c.UseTls(tls);
                    }
                }).Build();
                bool connected;
                try
                {
                    await client.StartAsync().WaitAsync(RefusedClientLimit);
                    var grains = (IClusterClient)client.Services.GetService(typeof(IClusterClient))!;
                    await grains.GetGrain<IShardGrain>("intruder/0").Ping().WaitAsync(RefusedClientLimit);
                    connected = true;
                }
                catch (Exception e) when (e is TimeoutException or OrleansException or System.Net.Sockets.SocketException or OperationCanceledException)
                {
                    connected = false;
                }
                Assert.False(connected, $"a client with {name} called a shard grain");
                Assert.Equal(0, Interlocked.Read(ref calls));
            }

            // A driver whose certificate (and authority) are another cluster's: refused by the worker, exit 2, one line, no call.
            string impostor = Impostor("impostor", cluster, authorityFrom: Path.Combine(other, "cluster.json"), certificatesFrom: Path.Combine(other, "cluster.json"), worker: 1);
            var refused = CliTests.Run(["evaluate", "--model", model, .. data, "--cluster", impostor]);
            CliGuardTests.AssertOneLineError(refused, "accepted this driver's certificate");
            Assert.Equal(0, Interlocked.Read(ref calls));
            // The same certificate beside this cluster's authority: the driver itself refuses it before it connects.
            string mixed = Impostor("mixed", cluster, authorityFrom: cluster, certificatesFrom: Path.Combine(other, "cluster.json"), worker: 1);
            CliGuardTests.AssertOneLineError(CliTests.Run(["evaluate", "--model", model, .. data, "--cluster", mixed]), "was not issued by the cluster's authority");
            Assert.Equal(0, Interlocked.Read(ref calls));

            // The cluster's own driver is let in and calls the shard grains (the count works).
            var admitted = CliTests.Run(["evaluate", "--model", model, .. data, "--cluster", cluster]);
            Assert.True(admitted.Code == 0, admitted.Err);
            Assert.True(Interlocked.Read(ref calls) > 0, "the cluster's own driver made no shard call");

            // A worker with another authority's certificate (trusting that authority) cannot join: exit 2, one line, no stack trace.
            var intruder = _processes.Start(null, null, "worker", "--cluster", impostor, "--index", "1", "--advertise", "127.0.0.7");
            var intruderErr = intruder.StandardError.ReadToEndAsync();
            _ = intruder.StandardOutput.ReadToEndAsync();
            await intruder.WaitForExitAsync(new CancellationTokenSource(RefusedWorkerLimit).Token);
            string err = await intruderErr;
            var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.Contains("ready", StringComparison.Ordinal)).ToArray();
            Assert.True(intruder.ExitCode == 2, $"exit {intruder.ExitCode}: {err}");
            Assert.True(lines.Length == 1, $"{lines.Length} lines: {err}");
            Assert.StartsWith("landscape: error: worker 1: the cluster stopped it", lines[0], StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        }
        finally
        {
            await worker.StopAsync(new CancellationTokenSource(ClusterHosting.WorkerStopTimeout).Token);
        }
    }

    [Fact]
    public void Without_Tls_A_Worker_Refuses_An_Address_Other_Than_Loopback_In_One_Line()
    {
        string file = PathOf("plain.json");
        // Nothing listens at this Redis endpoint and nothing is sent to it: the refusal comes first.
        Assert.Equal(0, CliTests.Run("cluster", "init", "--membership", "redis", "--redis", "127.0.0.1:1", "--workers", "2", "--out", file).Code);
        // 192.0.2.1 is TEST-NET-1 (RFC 5737): named only to be refused, never bound or reached.
        CliGuardTests.AssertOneLineError(CliTests.Run("worker", "--cluster", file, "--index", "0", "--advertise", "192.0.2.1"), "will not listen on 192.0.2.1 without TLS");
        CliGuardTests.AssertOneLineError(CliTests.Run("cluster", "init", "--tls", "--workers", "2", "--out", PathOf("x.json")), "--tls: only with --membership redis");
        CliGuardTests.AssertOneLineError(CliTests.Run("cluster", "init", "--membership", "redis", "--workers", "2", "--out", PathOf("x.json")), "--redis HOST:PORT is required");
        CliGuardTests.AssertOneLineError(CliTests.Run("cluster", "init", "--membership", "redis", "--redis", "nohost", "--workers", "2", "--out", PathOf("x.json")), "not HOST:PORT");
        CliGuardTests.AssertOneLineError(CliTests.Run("cluster", "init", "--membership", "etcd", "--workers", "2", "--out", PathOf("x.json")), "--membership: 'etcd'");
        Assert.False(File.Exists(PathOf("x.json")));
        // A localhost cluster's workers have the file's host and ports.
        string local = PathOf("local.json");
        Assert.Equal(0, CliTests.Run("cluster", "init", "--workers", "2", "--out", local).Code);
        CliGuardTests.AssertOneLineError(CliTests.Run("worker", "--cluster", local, "--index", "0", "--advertise", "127.0.0.2"), "--advertise and --port");
    }

    /// <summary>Kills the processes still running and removes the folder.</summary>
    public void Dispose() => _processes.Dispose();
}
