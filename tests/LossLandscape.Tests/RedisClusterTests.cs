using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Cluster;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Operators;
using LossLandscape.Problem;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 22: a cluster across "hosts" — a real Redis server (Debian's redis-server) on 127.0.0.1 as the membership store,
/// <c>cluster init --membership redis --tls</c>, and three <c>landscape worker</c> processes, each on its own loopback
/// address (127.0.0.2, .3, .4), so every connection crosses addresses as between machines, over mutual TLS. Shared by the
/// tests of <see cref="RedisClusterTests"/>.
/// </summary>
public sealed class RedisTlsClusterFixture : IDisposable
{
    /// <summary>Workers: three, issue 22's "127.0.0.2, 127.0.0.3, 127.0.0.4".</summary>
    public const int Workers = 3;

    /// <summary>A shard call's timeout: 30 s, far above a product here, so a dead worker is noticed by the ping, not by it.</summary>
    private const double CallTimeoutSeconds = 30;

    /// <summary>Retry window: 90 s, room for a worker's restart on a loaded 2-core machine and Orleans' failure detection.</summary>
    private const double RetryWindowSeconds = 90;

    private readonly RedisServer? _redis;

    /// <summary>Starts Redis, writes the cluster file and its certificates, and starts the workers; a missing redis-server is kept for <see cref="Require"/>.</summary>
    public RedisTlsClusterFixture()
    {
        TorchRuntime.EnsureInitialized();
        Cluster = new KillableCluster(Workers, "landscape-redis-tls-");
        var (fail, skip) = RedisServer.WhenMissing(File.Exists("/usr/bin/redis-server") || File.Exists("/usr/local/bin/redis-server"),
            Environment.GetEnvironmentVariable(RedisServer.RequireVariable) == "1");
        Missing = (fail, skip);
        if (fail is not null || skip is not null)
        {
            return;
        }
        _redis = RedisServer.Start();
        ClusterFile = Cluster.PathOf("cluster.json");
        var (code, output, err) = CliTests.Run("cluster", "init", "--membership", "redis", "--redis", _redis.Endpoint, "--workers", "3",
            "--base-port", KillableCluster.FreeBasePort(Workers).ToString(CultureInfo.InvariantCulture), "--tls", "--out", ClusterFile);
        Assert.True(code == 0, err);
        InitOutput = output;
        var written = ClusterConfig.Load(ClusterFile);
        Config = written with { CallTimeoutSeconds = CallTimeoutSeconds, RetryWindowSeconds = RetryWindowSeconds };
        Cluster.WriteConfig("cluster.json", Config);
        Task.WaitAll(Enumerable.Range(0, Workers).Select(i => Task.Run(() => Cluster.StartWorker(ClusterFile, i, "--advertise", Address(i)))).ToArray());
    }

    /// <summary>Fail or skip reasons when redis-server is missing.</summary>
    public (string? Fail, string? Skip) Missing { get; }

    /// <summary>The worker processes.</summary>
    internal KillableCluster Cluster { get; }

    /// <summary>The cluster file (redis membership, TLS) and its certificates beside it.</summary>
    public string ClusterFile { get; } = "";

    /// <summary>What <c>cluster init</c> printed.</summary>
    public string InitOutput { get; } = "";

    /// <summary>The cluster file's contents.</summary>
    public ClusterConfig Config { get; } = null!;

    /// <summary>The Redis server.</summary>
    internal RedisServer Redis => _redis!;

    /// <summary>Worker i's loopback address: 127.0.0.(i + 2), the driver being on 127.0.0.1.</summary>
    public static string Address(int i) => string.Create(CultureInfo.InvariantCulture, $"127.0.0.{i + 2}");

    /// <summary>Fails or skips the test when redis-server is missing (<see cref="RedisServer.WhenMissing"/>).</summary>
    public void Require()
    {
        if (Missing.Fail is not null)
        {
            Assert.Fail(Missing.Fail);
        }
        Skip.If(Missing.Skip is not null, Missing.Skip);
    }

    /// <summary>Stops the workers and Redis.</summary>
    public void Dispose()
    {
        Cluster.Dispose();
        _redis?.Dispose();
    }
}

/// <summary>
/// Issue 22's acceptance on <see cref="RedisTlsClusterFixture"/>: the case table's sums and the digits commands
/// (<c>spectrum</c>, <c>trace</c>, <c>certify</c>, <c>train</c> with every optimizer, <c>walk</c>) give the single-process
/// answers (1e-10 relative) over Redis membership and mutual TLS, including through a worker killed mid-Lanczos and restarted
/// on a new address.
/// </summary>
public sealed class RedisClusterTests(RedisTlsClusterFixture fixture, ITestOutputHelper output) : IClassFixture<RedisTlsClusterFixture>
{
    /// <summary>The agreement of a number computed here and on the cluster: 1e-10 relative (issue 22's bound).</summary>
    private const double Agreement = Tolerances.DistributedRestartAgreement;

    /// <summary>How long one driver process may run: 300 s, a loaded 2-core machine's Lanczos through a restart and then some.</summary>
    private static readonly TimeSpan DriverLimit = TimeSpan.FromSeconds(300);

    /// <summary>
    /// The longest time from the kill to the driver's retry that the test accepts: 30 s, "within seconds" on a loaded 2-core
    /// machine (the session pings a pending call's shard every second and gives it up after 5 s unanswered).
    /// </summary>
    private static readonly TimeSpan NoticeLimit = TimeSpan.FromSeconds(30);

    private static void Close(double here, double there, string what) =>
        Assert.True(Math.Abs(here - there) <= Agreement * Math.Max(1.0, Math.Abs(here)), $"{what}: {here:R} here, {there:R} on the cluster");

    private static void Close(double[] here, double[] there, string what)
    {
        Assert.NotEmpty(here);
        Assert.Equal(here.Length, there.Length);
        double scale = Math.Max(1.0, here.Max(Math.Abs));
        for (int i = 0; i < here.Length; i++)
        {
            Assert.True(Math.Abs(here[i] - there[i]) <= Agreement * scale, $"{what}[{i}]: {here[i]:R} here, {there[i]:R} on the cluster");
        }
    }

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();

    [SkippableFact]
    public void Cluster_Init_Writes_A_Redis_File_An_Authority_And_Private_Keys_Readable_By_Their_Owner_Only()
    {
        fixture.Require();
        Skip.If(OperatingSystem.IsWindows(), "file modes are Unix's");
        Assert.True(fixture.Config.IsRedis && fixture.Config.Tls);
        Assert.Equal(fixture.Redis.Endpoint, fixture.Config.Redis);
        Assert.Contains("--advertise", fixture.InitOutput, StringComparison.Ordinal);
        var keys = Enumerable.Range(0, RedisTlsClusterFixture.Workers).Select(i => ClusterCertificates.WorkerPaths(fixture.ClusterFile, i).Key)
            .Append(ClusterCertificates.DriverPaths(fixture.ClusterFile).Key).ToArray();
        foreach (var key in keys)
        {
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
            }
            Assert.StartsWith("-----BEGIN PRIVATE KEY-----", File.ReadAllText(key), StringComparison.Ordinal);
        }
        Assert.True(File.Exists(ClusterCertificates.AuthorityPath(fixture.ClusterFile)));
        // No temporary file is left beside them (each was written to one and renamed).
        Assert.Empty(Directory.GetFiles(fixture.Cluster.Directory, ".*.tmp"));
    }

    [SkippableFact]
    public async Task Case_Table_Sums_Over_Redis_Membership_And_Tls_Equal_Single_Process()
    {
        fixture.Require();
        // The driver joins as the CLI does: through Redis, with its certificate.
        using var host = await ClusterHosting.ConnectAsync(fixture.Config, default, ClusterCertificates.ForDriver(fixture.ClusterFile));
        var client = host.Services.GetRequiredService<IClusterClient>();
        var hosts = await client.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
        // Three workers on three loopback addresses other than the driver's (a worker restarted by another test has moved).
        var addresses = hosts.Keys.Select(s => s.Endpoint.Address).ToArray();
        Assert.Equal(RedisTlsClusterFixture.Workers, addresses.Distinct().Count());
        Assert.All(addresses, a => Assert.True(System.Net.IPAddress.IsLoopback(a) && !a.Equals(System.Net.IPAddress.Loopback), $"worker at {a}"));
        var cases = Cases.Mlps().Where(c => c.Name.StartsWith("mlp 3-4-3-3", StringComparison.Ordinal))
            .Concat(Cases.Dags().Where(c => c.Name.EndsWith("ℓ=1", StringComparison.Ordinal))).ToArray();
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            using var model = new NetworkModel(c.Network, c.Parameters);
            using var map = new ResidualMap(model, c.Data);
            using var session = new ClusterSession(client, fixture.Config, new DataSource(c.Data.Source, []), c.Data, new NetworkPoint(c.Network, c.Parameters));
            session.Open();
            Assert.Equal(RedisTlsClusterFixture.Workers, session.Silos.Distinct().Count());
            ClusterTests.AssertSumsAgree(session, map, c.Name);
            // Lanczos' top eigenvalues on the distributed Hessian: every estimator takes the same operator.
            var options = new SpectrumOptions(SpectrumMethod.Lanczos, CurvatureKind.Hessian, 3, SpectrumEnd.Largest, 1e-14, 100, 1);
            Close(HessianSpectrum.Compute(map, options).Eigenvalues.ToArray(), HessianSpectrum.Compute(session, options).Eigenvalues.ToArray(), $"{c.Name}: λ");
        }
    }

    [SkippableFact]
    public void Digits_Commands_Over_Redis_Membership_And_Tls_Write_The_Single_Process_Answers()
    {
        fixture.Require();
        string dir = Directory.CreateDirectory(fixture.Cluster.PathOf("digits")).FullName;
        string P(string name) => Path.Combine(dir, name);
        string[] digits = ["--data", "builtin:digits", "--one-hot", "digit"];
        string model = P("m.json");
        Assert.Equal(0, CliTests.Run(["init", .. digits, "--hidden", "8", "--seed", "3", "--out", model]).Code);
        (JsonDocument Here, JsonDocument There) Both(string name, string[] arguments, string[]? outputs = null)
        {
            string here = P(name + "-here.json"), there = P(name + "-there.json");
            var local = CliTests.Run([.. arguments, .. (outputs ?? []).Select(o => o.Replace("{}", "here", StringComparison.Ordinal)), "--json", here]);
            Assert.True(local.Code == 0, $"{name} here: {local.Err}");
            var remote = CliTests.Run([.. arguments, .. (outputs ?? []).Select(o => o.Replace("{}", "there", StringComparison.Ordinal)), "--cluster", fixture.ClusterFile, "--json", there]);
            Assert.True(remote.Code == 0, $"{name} on the cluster: {remote.Err}");
            Assert.Contains("loaded on 3 of 3 workers", remote.Err, StringComparison.Ordinal);
            var b = JsonDocument.Parse(File.ReadAllText(there));
            Assert.Equal(3, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
            return (JsonDocument.Parse(File.ReadAllText(here)), b);
        }

        var (a, b) = Both("spectrum", ["spectrum", "--model", model, .. digits, "--k", "5", "--seed", "1", "--tolerance", "1e-14", "--max-iterations", "200"]);
        Close(Doubles(a.RootElement.GetProperty("eigenvalues")), Doubles(b.RootElement.GetProperty("eigenvalues")), "spectrum λ");

        (a, b) = Both("trace", ["trace", "--model", model, .. digits, "--method", "hutchinson", "--probes", "20", "--seed", "3"]);
        Close(a.RootElement.GetProperty("trace").GetDouble(), b.RootElement.GetProperty("trace").GetDouble(), "trace");

        (a, b) = Both("certify", ["certify", "--model", model, .. digits]);
        Assert.Equal(a.RootElement.GetProperty("jacobian").GetProperty("rank").GetInt32(), b.RootElement.GetProperty("jacobian").GetProperty("rank").GetInt32());
        Close(a.RootElement.GetProperty("jacobian").GetProperty("sigmaMax").GetDouble(), b.RootElement.GetProperty("jacobian").GetProperty("sigmaMax").GetDouble(), "certify σmax");
        foreach (var count in new[] { "positive", "zero", "negative" })
        {
            Assert.Equal(a.RootElement.GetProperty("hessian").GetProperty(count).GetInt32(), b.RootElement.GetProperty("hessian").GetProperty(count).GetInt32());
        }

        foreach (var optimizer in new[] { "gd", "sgd", "adam", "lbfgs", "gauss-newton" })
        {
            string[] batch = optimizer is "sgd" or "adam" ? ["--batch-size", "64", "--loss-every", "1"] : [];
            (a, b) = Both(optimizer, ["train", .. digits, "--hidden", "8", "--optimizer", optimizer, "--steps", optimizer == "gauss-newton" ? "2" : "5", "--seed", "3", .. batch],
                ["--out", P($"{optimizer}-{{}}-model.json")]);
            Assert.Equal(optimizer, b.RootElement.GetProperty("optimizer").GetString());
            Close(Doubles(a.RootElement.GetProperty("lossHistory")), Doubles(b.RootElement.GetProperty("lossHistory")), $"train --optimizer {optimizer}: L");
        }

        // The walk on M: a constructed global minimum (the case table's synthetic rows; digits has too many rows for Lemma 3.3 here).
        string[] synthetic = ["--data", "synthetic:12,3,1,4"];
        string point = P("c.json");
        var built = CliTests.Run(["construct", .. synthetic, "--out", point]);
        Assert.True(built.Code == 0, built.Err);
        (a, b) = Both("walk", ["walk", "--model", point, .. synthetic, "--steps", "3", "--seed", "2"]);
        Assert.Equal("converged", b.RootElement.GetProperty("status").GetString());
        var (stepsA, stepsB) = (a.RootElement.GetProperty("steps").EnumerateArray().ToArray(), b.RootElement.GetProperty("steps").EnumerateArray().ToArray());
        Assert.Equal(stepsA.Length, stepsB.Length);
        for (int s = 0; s < stepsA.Length; s++)
        {
            Assert.Equal(stepsA[s].GetProperty("rank").GetInt32(), stepsB[s].GetProperty("rank").GetInt32());
            Close(stepsA[s].GetProperty("displacement").GetDouble(), stepsB[s].GetProperty("displacement").GetDouble(), $"walk step {s}: ‖p − p₀‖");
        }
    }

    [SkippableFact]
    public async Task A_Worker_Killed_Mid_Lanczos_And_Restarted_On_Another_Address_Is_Retried_And_The_Answer_Is_The_Single_Process_One()
    {
        fixture.Require();
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(16, ActivationRegistry.Default)], data.OutputDim);
        var point = new NetworkPoint(mlp, mlp.InitialParameters(5));
        string model = fixture.Cluster.PathOf("kill-model.json");
        ModelFile.Save(model, point);
        string release = fixture.Cluster.PathOf("release-kill"), json = fixture.Cluster.PathOf("kill.json");
        const int pauseAfter = 3;
        var driver = fixture.Cluster.Start(new Dictionary<string, string>
        {
            [ClusterOptionsHook.PauseAfter] = pauseAfter.ToString(CultureInfo.InvariantCulture),
            [ClusterOptionsHook.PauseFile] = release,
        }, null, "spectrum", "--model", model, "--data", "builtin:digits", "--one-hot", "digit", "--k", "6", "--seed", "1",
            "--tolerance", "1e-15", "--max-iterations", "250", "--cluster", fixture.ClusterFile, "--json", json);
        var stdout = driver.StandardOutput.ReadToEndAsync();
        var log = new DriverLines(driver);
        Assert.True(log.Paused.Wait(TimeSpan.FromSeconds(120)) && !driver.HasExited, "the driver did not pause: " + log.Text);
        // Worker 1 vanishes (SIGKILL) with the driver about to send its next product; it comes back on another address and port.
        string killedSilo = "S" + RedisTlsClusterFixture.Address(1) + ":";
        fixture.Cluster.Kill(1);
        var killedAt = log.Now;
        File.WriteAllText(release, "");
        fixture.Cluster.StartWorker(fixture.ClusterFile, 1, "--advertise", "127.0.0.5", "--port", KillableCluster.FreeBasePort(1).ToString(CultureInfo.InvariantCulture));
        await driver.WaitForExitAsync(new CancellationTokenSource(DriverLimit).Token);
        await stdout;
        string errors = log.All.Result;
        Assert.True(driver.ExitCode == 0, $"exit {driver.ExitCode}: {errors}");
        var retry = log.FirstRetry;
        Assert.True(retry is not null, "no retry reported: " + errors);
        var notice = retry!.Value.At - killedAt;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"kill → retry line after {notice.TotalSeconds:0.00} s: {retry.Value.Line}"));
        Assert.Matches(@"landscape: shard \d+: \w+ failed after \d+\.\d s \(attempt \d+: ", retry.Value.Line);
        Assert.True(notice <= NoticeLimit, $"the retry came {notice.TotalSeconds} s after the kill");
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var cluster = doc.RootElement.GetProperty("cluster");
        Assert.True(cluster.GetProperty("retries").GetInt32() >= 1);
        // No shard is left on the dead worker: each was placed anew, on the restarted worker or on another.
        Assert.DoesNotContain(cluster.GetProperty("shardSilos").EnumerateArray(), s => s.GetString()!.StartsWith(killedSilo, StringComparison.Ordinal));
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var local = point.ToModel();
        using var map = new ResidualMap(local, data);
        var single = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, CurvatureKind.Hessian, 6, SpectrumEnd.Largest, 1e-15, 250, 1)).Eigenvalues.ToArray();
        Close(single, Doubles(doc.RootElement.GetProperty("eigenvalues")), "λ through the restart");
    }

    /// <summary>The driver's test hooks (<c>ClusterOptions</c> in the CLI).</summary>
    private static class ClusterOptionsHook
    {
        public const string PauseAfter = "LANDSCAPE_CLUSTER_PAUSE_AFTER_PRODUCTS";
        public const string PauseFile = "LANDSCAPE_CLUSTER_PAUSE_FILE";
    }

    /// <summary>A driver's stderr, read on a thread of its own, each line with the time it was read.</summary>
    private sealed class DriverLines
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly TaskCompletionSource _paused = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<(TimeSpan At, string Line)> _lines = [];
        private readonly TaskCompletionSource<string> _all = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DriverLines(Process driver) => new Thread(() =>
        {
            string? line;
            while ((line = driver.StandardError.ReadLine()) is not null)
            {
                lock (_lines)
                {
                    _lines.Add((_clock.Elapsed, line));
                }
                if (line.Contains("paused after", StringComparison.Ordinal))
                {
                    PausedAt = _clock.Elapsed;
                    _paused.TrySetResult();
                }
            }
            _paused.TrySetResult();
            _all.SetResult(Text);
        }) { IsBackground = true }.Start();

        public Task Paused => _paused.Task;

        public TimeSpan PausedAt { get; private set; }

        /// <summary>Now, on the clock of the lines.</summary>
        public TimeSpan Now => _clock.Elapsed;

        public Task<string> All => _all.Task;

        public string Text
        {
            get
            {
                lock (_lines)
                {
                    return string.Join('\n', _lines.Select(l => l.Line));
                }
            }
        }

        public (TimeSpan At, string Line)? FirstRetry
        {
            get
            {
                lock (_lines)
                {
                    return _lines.Where(l => l.Line.Contains("retrying", StringComparison.Ordinal)).Select(l => ((TimeSpan, string)?)l).FirstOrDefault();
                }
            }
        }
    }
}
