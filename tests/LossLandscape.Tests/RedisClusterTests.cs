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

    /// <summary>Worker i's first loopback address: 127.0.0.(i + 2), the driver being on 127.0.0.1.</summary>
    public static string Address(int i) => string.Create(CultureInfo.InvariantCulture, $"127.0.0.{i + 2}");

    private readonly string[] _addresses = Enumerable.Range(0, Workers).Select(Address).ToArray();
    private int _moves;

    /// <summary>Where worker <paramref name="i"/> listens now.</summary>
    public string AddressOf(int i)
    {
        lock (_addresses)
        {
            return _addresses[i];
        }
    }

    /// <summary>A new loopback address for worker <paramref name="i"/>, none used before by this cluster (127.0.0.10, .11, …).</summary>
    public string Move(int i)
    {
        lock (_addresses)
        {
            _addresses[i] = string.Create(CultureInfo.InvariantCulture, $"127.0.0.{10 + _moves++}");
            return _addresses[i];
        }
    }

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
[Collection(WorkerProcessesCollection.Name)]
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

    /// <summary>One command of the acceptance: its arguments (with <c>{dir}</c> for the test's folder), output options (with <c>{}</c> for here/there), and how its answers are compared.</summary>
    private sealed record Command(string Name, string[] Arguments, string[] Outputs, Action<JsonElement, JsonElement> Compare);

    private static readonly string[] Digits = ["--data", "builtin:digits", "--one-hot", "digit"];

    /// <summary>The digits network of the commands (64-8-10, seed 3), and the constructed point of the walk (synthetic rows: Lemma 3.3 needs h ≥ d).</summary>
    private static readonly string[] Setup =
    [
        "init --data builtin:digits --one-hot digit --hidden 8 --seed 3 --out {dir}/m.json",
        "construct --data synthetic:12,3,1,4 --out {dir}/c.json",
    ];

    /// <summary>Issue 22's acceptance commands: spectrum, trace, certify, train with every optimizer, walk.</summary>
    private static readonly Command[] Commands =
    [
        new("spectrum", ["spectrum", "--model", "{dir}/m.json", .. Digits, "--k", "5", "--seed", "1", "--tolerance", "1e-14", "--max-iterations", "200"], [],
            (a, b) => Close(Doubles(a.GetProperty("eigenvalues")), Doubles(b.GetProperty("eigenvalues")), "spectrum λ")),
        new("trace", ["trace", "--model", "{dir}/m.json", .. Digits, "--method", "hutchinson", "--probes", "20", "--seed", "3"], [],
            (a, b) => Close(a.GetProperty("trace").GetDouble(), b.GetProperty("trace").GetDouble(), "trace")),
        new("certify", ["certify", "--model", "{dir}/m.json", .. Digits], [], (a, b) =>
        {
            Assert.Equal(a.GetProperty("jacobian").GetProperty("rank").GetInt32(), b.GetProperty("jacobian").GetProperty("rank").GetInt32());
            Close(a.GetProperty("jacobian").GetProperty("sigmaMax").GetDouble(), b.GetProperty("jacobian").GetProperty("sigmaMax").GetDouble(), "certify σmax");
            foreach (var count in new[] { "positive", "zero", "negative" })
            {
                Assert.Equal(a.GetProperty("hessian").GetProperty(count).GetInt32(), b.GetProperty("hessian").GetProperty(count).GetInt32());
            }
        }),
        .. new[] { "gd", "sgd", "adam", "lbfgs", "gauss-newton" }.Select(optimizer => new Command($"train-{optimizer}",
            ["train", .. Digits, "--hidden", "8", "--optimizer", optimizer, "--steps", optimizer == "gauss-newton" ? "2" : "5", "--seed", "3",
                .. optimizer is "sgd" or "adam" ? new[] { "--batch-size", "64", "--loss-every", "1" } : []],
            ["--out", $"{{dir}}/{optimizer}-{{}}.json"],
            (a, b) =>
            {
                Assert.Equal(optimizer, b.GetProperty("optimizer").GetString());
                Close(Doubles(a.GetProperty("lossHistory")), Doubles(b.GetProperty("lossHistory")), $"train --optimizer {optimizer}: L");
            })),
        new("walk", ["walk", "--model", "{dir}/c.json", "--data", "synthetic:12,3,1,4", "--steps", "3", "--seed", "2"], [], (a, b) =>
        {
            Assert.Equal("converged", b.GetProperty("status").GetString());
            var (stepsA, stepsB) = (a.GetProperty("steps").EnumerateArray().ToArray(), b.GetProperty("steps").EnumerateArray().ToArray());
            Assert.Equal(stepsA.Length, stepsB.Length);
            for (int s = 0; s < stepsA.Length; s++)
            {
                Assert.Equal(stepsA[s].GetProperty("rank").GetInt32(), stepsB[s].GetProperty("rank").GetInt32());
                Close(stepsA[s].GetProperty("displacement").GetDouble(), stepsB[s].GetProperty("displacement").GetDouble(), $"walk step {s}: ‖p − p₀‖");
            }
        }),
    ];

    private static string[] In(string dir, IEnumerable<string> words, string side) =>
        [.. words.Select(w => w.Replace("{dir}", dir, StringComparison.Ordinal).Replace("{}", side, StringComparison.Ordinal))];

    /// <summary>The setup's files in a folder of the test's own.</summary>
    private string Prepare(string name)
    {
        string dir = Directory.CreateDirectory(fixture.Cluster.PathOf(name)).FullName;
        foreach (var line in Setup)
        {
            var made = CliTests.Run(In(dir, line.Split(' '), ""));
            Assert.True(made.Code == 0, $"{line}: {made.Err}");
        }
        return dir;
    }

    /// <summary>Runs <paramref name="command"/> here (in-process), with its JSON, and returns its path.</summary>
    private static string RunHere(string dir, Command command)
    {
        string here = Path.Combine(dir, command.Name + "-here.json");
        var local = CliTests.Run([.. In(dir, command.Arguments, "here"), .. In(dir, command.Outputs, "here"), "--json", here]);
        Assert.True(local.Code == 0, $"{command.Name} here: {local.Err}");
        return here;
    }

    private static void Compare(Command command, string here, string there)
    {
        using var a = JsonDocument.Parse(File.ReadAllText(here));
        using var b = JsonDocument.Parse(File.ReadAllText(there));
        Assert.Equal(RedisTlsClusterFixture.Workers, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
        command.Compare(a.RootElement, b.RootElement);
    }

    [SkippableFact]
    public void Digits_Commands_Over_Redis_Membership_And_Tls_Write_The_Single_Process_Answers()
    {
        fixture.Require();
        string dir = Prepare("digits");
        foreach (var command in Commands)
        {
            string here = RunHere(dir, command), there = Path.Combine(dir, command.Name + "-there.json");
            var remote = CliTests.Run([.. In(dir, command.Arguments, "there"), .. In(dir, command.Outputs, "there"), "--cluster", fixture.ClusterFile, "--json", there]);
            Assert.True(remote.Code == 0, $"{command.Name} on the cluster: {remote.Err}");
            Assert.Contains("loaded on 3 of 3 workers", remote.Err, StringComparison.Ordinal);
            Compare(command, here, there);
        }
    }

    /// <summary>The commands run through a kill and a restart: Lanczos, a stochastic trace, L-BFGS's line searches, and the walk's retractions.</summary>
    private static readonly string[] KilledCommands = ["spectrum", "trace", "train-lbfgs", "walk"];

    /// <summary>The theory's rows: <see cref="KilledCommands"/>.</summary>
    public static TheoryData<string> Killed => [.. KilledCommands];

    [SkippableTheory]
    [MemberData(nameof(Killed))]
    public async Task A_Worker_Killed_Mid_Run_And_Restarted_On_Another_Address_Is_Retried_And_The_Answer_Is_The_Single_Process_One(string name)
    {
        fixture.Require();
        var command = Commands.Single(c => c.Name == name);
        string dir = Prepare("kill-" + name);
        string here = RunHere(dir, command), there = Path.Combine(dir, name + "-there.json");
        string release = Path.Combine(dir, "release");
        // The driver pauses after its 2nd distributed call (the test hook): the kill lands mid-run whatever the machine's load.
        var driver = fixture.Cluster.Start(new Dictionary<string, string>
        {
            [ClusterOptionsHook.PauseAfter] = "2",
            [ClusterOptionsHook.PauseFile] = release,
        }, null, [.. In(dir, command.Arguments, "there"), .. In(dir, command.Outputs, "there"), "--cluster", fixture.ClusterFile, "--json", there]);
        var stdout = driver.StandardOutput.ReadToEndAsync();
        var log = new DriverLines(driver);
        Assert.True(log.Paused.Wait(TimeSpan.FromSeconds(120)) && !driver.HasExited, "the driver did not pause: " + log.Text);
        // A worker vanishes (SIGKILL) with the driver about to send its next call; it comes back on another address and port.
        int victim = Array.IndexOf(KilledCommands, name) % RedisTlsClusterFixture.Workers;
        string killedSilo = "S" + fixture.AddressOf(victim) + ":";
        fixture.Cluster.Kill(victim);
        var killedAt = log.Now;
        File.WriteAllText(release, "");
        string moved = fixture.Move(victim);
        fixture.Cluster.StartWorker(fixture.ClusterFile, victim, "--advertise", moved, "--port", KillableCluster.FreeBasePort(1).ToString(CultureInfo.InvariantCulture));
        await driver.WaitForExitAsync(new CancellationTokenSource(DriverLimit).Token);
        await stdout;
        string errors = log.All.Result;
        Assert.True(driver.ExitCode == 0, $"exit {driver.ExitCode}: {errors}");
        var retry = log.FirstRetry;
        Assert.True(retry is not null, "no retry reported: " + errors);
        var notice = retry!.Value.At - killedAt;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: worker {victim} killed, restarted on {moved}; retry line {notice.TotalSeconds:0.00} s after the kill: {retry.Value.Line}"));
        Assert.Matches(@"landscape: shard \d+: \w+ failed after \d+\.\d s \(attempt \d+: ", retry.Value.Line);
        Assert.True(notice <= NoticeLimit, $"the retry came {notice.TotalSeconds} s after the kill");
        using (var doc = JsonDocument.Parse(File.ReadAllText(there)))
        {
            var cluster = doc.RootElement.GetProperty("cluster");
            Assert.True(cluster.GetProperty("retries").GetInt32() >= 1);
            // No shard is left on the dead worker: each was placed anew, on the restarted worker or on another.
            Assert.DoesNotContain(cluster.GetProperty("shardSilos").EnumerateArray(), s => s.GetString()!.StartsWith(killedSilo, StringComparison.Ordinal));
        }
        Compare(command, here, there);
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
