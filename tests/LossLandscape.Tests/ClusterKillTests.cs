using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LossLandscape.Cli.Commands;
using LossLandscape.Cluster;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Xunit.Abstractions;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 19 §2: workers killed with SIGKILL at seeded random moments of long <c>spectrum</c>, <c>trace</c> and
/// <c>train --cluster</c> runs on three <c>landscape worker</c> processes, while the runs go on (no pause point), and each
/// restarted at once. Every kill of a worker holding a shard is followed by the driver's retry within seconds (the call in
/// flight is given up, not waited out to the 300 s call timeout), and every run ends with the single-process answer. The
/// figures (kills, retries, time from kill to retry and to the run's going on) are written to the test's output for
/// bench/README.md.
/// </summary>
[Collection(WorkerProcessesCollection.Name)]
public sealed class ClusterKillTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>The seed of the kill moments.</summary>
    private const int Seed = 19;

    /// <summary>Kills per run: 7, so 21 over the three runs, issue 19's "at least 20".</summary>
    private const int KillsPerRun = 7;

    /// <summary>
    /// Every shard computation on the workers waits 250 ms first (the worker's test hook, a slow shard): a call is nearly always
    /// in flight, so that a kill at a random moment lands in one, and a run's length is set by its calls (30 to 70 each, on the
    /// 442 rows of diabetes, where a product computes in milliseconds), not by the machine's load.
    /// </summary>
    private const int ComputeDelayMilliseconds = 250;

    /// <summary>
    /// The longest time from a kill to the driver's retry that the test accepts: 15 s, "within seconds" on a loaded 2-core
    /// machine (the session pings a pending call's shard every second); the old driver waited out the call timeout, 300 s.
    /// </summary>
    private static readonly TimeSpan KillToRetryLimit = TimeSpan.FromSeconds(15);

    /// <summary>Time between the driver's resuming (a call completed after the restart) and the next kill: uniform in 0.2 … 1.0 s, seeded.</summary>
    private const double GapMinSeconds = 0.2, GapMaxSeconds = 1.0;

    /// <summary>How long a run may take after its last kill: 180 s.</summary>
    private static readonly TimeSpan RunLimit = TimeSpan.FromSeconds(180);

    private readonly KillableCluster _cluster = new(3, "landscape-kill-");
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>One kill: the run, the worker, when, the first retry after it (null if none came), and when the run went on.</summary>
    /// <param name="Run">The command.</param>
    /// <param name="Worker">The worker killed.</param>
    /// <param name="Shards">The shards it held (its last "loaded" lines): a kill of a worker that held none has no call to lose.</param>
    /// <param name="At">When, on the test's clock.</param>
    /// <param name="RetryAfter">Time from the kill to the driver's first retry line.</param>
    /// <param name="Retry">That line.</param>
    /// <param name="ResumedAfter">Time from the kill to the first call the driver completed after that retry (the worker restarted, the shard reloaded).</param>
    private sealed record Kill(string Run, int Worker, int[] Shards, TimeSpan At, TimeSpan? RetryAfter, string? Retry, TimeSpan? ResumedAfter)
    {
        /// <summary>What gave the call up: the gateway watch, a refused or unanswered ping, another activation, or a call sent after the kill, refused.</summary>
        public string Detection => Retry switch
        {
            null => "none",
            _ when Retry.Contains("gateway connection", StringComparison.Ordinal) => "gateway connection closed",
            _ when Retry.Contains("no answer to a ping (TimeoutException", StringComparison.Ordinal) => "ping unanswered (5 s)",
            _ when Retry.Contains("no answer to a ping", StringComparison.Ordinal) => "ping refused",
            _ when Retry.Contains("another activation", StringComparison.Ordinal) => "another activation",
            _ => "call sent after the kill refused",
        };
    }

    /// <summary>A driver's stderr, line by line, each with the test clock's time when it was read.</summary>
    private sealed class DriverLog
    {
        private readonly List<(TimeSpan At, string Line)> _lines = [];
        private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<string> _all = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public DriverLog(Process driver, Stopwatch clock) =>
            // A thread of its own: a line must be stamped when it is written, not when the thread pool gets round to it.
            new Thread(() =>
            {
                string? line;
                while ((line = driver.StandardError.ReadLine()) is not null)
                {
                    lock (_lines)
                    {
                        _lines.Add((clock.Elapsed, line));
                    }
                    if (line.Contains("loaded on", StringComparison.Ordinal))
                    {
                        _loaded.TrySetResult();
                    }
                    if (line.StartsWith(CallLine, StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref _calls);
                    }
                }
                _loaded.TrySetResult();
                lock (_lines)
                {
                    _all.SetResult(string.Join('\n', _lines.Select(l => l.Line)));
                }
            }) { IsBackground = true }.Start();

        private const string CallLine = "landscape: cluster: call ";
        private int _calls;

        public Task Loaded => _loaded.Task;

        /// <summary>Distributed calls the driver has completed (its <c>call N done</c> lines).</summary>
        public int Calls => Volatile.Read(ref _calls);

        public Task<string> All => _all.Task;

        /// <summary>The last lines read, with their times, for a failure's message.</summary>
        public string Tail()
        {
            lock (_lines)
            {
                return string.Join('\n', _lines.Where(l => !l.Line.StartsWith(CallLine, StringComparison.Ordinal)).TakeLast(30).Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.At.TotalSeconds:0.00} s: {l.Line}")));
            }
        }

        /// <summary>When the driver completed its first call after <paramref name="after"/>, or null.</summary>
        public TimeSpan? CallAfter(TimeSpan after)
        {
            lock (_lines)
            {
                return _lines.FirstOrDefault(l => l.At > after && l.Line.StartsWith(CallLine, StringComparison.Ordinal)) is { Line: not null } l ? l.At : null;
            }
        }

        /// <summary>The retry lines (<c>landscape: shard S: … retrying</c>) read after <paramref name="after"/>.</summary>
        public (TimeSpan At, string Line)[] RetriesAfter(TimeSpan after)
        {
            lock (_lines)
            {
                return _lines.Where(l => l.At > after && l.Line.EndsWith("retrying", StringComparison.Ordinal)).ToArray();
            }
        }
    }

    [Fact]
    public async Task Workers_Killed_At_Random_Moments_Mid_Call_Are_Retried_Within_Seconds_And_Every_Run_Gets_The_Single_Process_Answer()
    {
        var testWatch = Stopwatch.StartNew();
        TorchRuntime.EnsureInitialized();
        var config = ClusterConfig.Localhost(3, KillableCluster.FreeBasePort(3)) with { RetryWindowSeconds = 60 };
        Assert.Equal(ClusterConfig.DefaultCallTimeoutSeconds, config.CallTimeoutSeconds);
        string clusterFile = _cluster.WriteConfig("cluster.json", config);
        var data = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn);
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(16, ActivationRegistry.Default)], data.OutputDim);
        string model = _cluster.PathOf("model.json");
        ModelFile.Save(model, new NetworkPoint(mlp, mlp.InitialParameters(5)));
        _cluster.WorkerEnvironment[WorkerCommand.ComputeDelayVariable] = ComputeDelayMilliseconds.ToString(CultureInfo.InvariantCulture);
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Task.Run(() => _cluster.StartWorker(clusterFile, i))));

        string[] diabetes = ["--data", "builtin:diabetes"];
        var runs = new (string Name, string[] Arguments, Func<JsonElement, double[]> Answer, Func<double[], double> Scale)[]
        {
            ("spectrum", ["spectrum", "--model", model, .. diabetes, "--k", "6", "--seed", "1", "--tolerance", "1e-15", "--max-iterations", "150"],
                j => Doubles(j.GetProperty("eigenvalues")), a => a.Max(Math.Abs)),
            ("trace", ["trace", "--model", model, .. diabetes, "--method", "hutchinson", "--probes", "300", "--tolerance", "1e-12", "--seed", "3"],
                j => [j.GetProperty("trace").GetDouble()], a => Math.Abs(a[0])),
            ("train", ["train", .. diabetes, "--hidden", "16", "--optimizer", "gd", "--steps", "30", "--seed", "2"],
                j => Doubles(j.GetProperty("lossHistory")), a => 0), // each loss against itself, below
        };

        var random = new Random(Seed);
        var kills = new List<Kill>();
        var runCalls = new Dictionary<string, int>();
        var runRetries = new Dictionary<string, int>();
        foreach (var (name, arguments, answer, scale) in runs)
        {
            string localJson = _cluster.PathOf($"{name}-local.json"), clusterJson = _cluster.PathOf($"{name}-cluster.json");
            string[] outFile = name == "train" ? ["--out", _cluster.PathOf($"{name}-model.json")] : [];
            var (code, _, err) = CliTests.Run([.. arguments, .. outFile, "--json", localJson]);
            Assert.True(code == 0, $"{name} in one process: exit {code}: {err}");

            var driver = _cluster.Start(new Dictionary<string, string> { [LossLandscape.Cli.ClusterOptions.LogCallsVariable] = "1" }, null, [.. arguments, .. outFile, "--cluster", clusterFile, "--json", clusterJson]);
            _ = driver.StandardOutput.ReadToEndAsync();
            var log = new DriverLog(driver, _clock);
            await Task.WhenAny(log.Loaded, Task.Delay(TimeSpan.FromSeconds(120)));
            Assert.True(log.Loaded.IsCompleted && !driver.HasExited, $"the {name} driver did not load its shards: " + (driver.HasExited ? await log.All : "still loading"));
            int victim = 2;
            while (kills.Count(k => k.Run == name && k.Shards.Length > 0) < KillsPerRun)
            {
                await Task.Delay(TimeSpan.FromSeconds(GapMinSeconds + (GapMaxSeconds - GapMinSeconds) * random.NextDouble()));
                if (driver.HasExited)
                {
                    break;
                }
                // Workers 1 and 2 in turn, or the one that holds a shard (shards move when a worker is declared dead before it
                // is back); never worker 0: localhost membership keeps its table there.
                victim = _cluster.ShardsOn(3 - victim).Length > 0 || _cluster.ShardsOn(victim).Length == 0 ? 3 - victim : victim;
                int[] shards = _cluster.ShardsOn(victim);
                var at = _clock.Elapsed;
                _cluster.Kill(victim);
                _cluster.StartWorker(clusterFile, victim);
                while (log.RetriesAfter(at).Length == 0 && !driver.HasExited && _clock.Elapsed - at < KillToRetryLimit)
                {
                    await Task.Delay(20);
                }
                var first = log.RetriesAfter(at).FirstOrDefault();
                string retry = first.Line is null ? "none" : string.Create(CultureInfo.InvariantCulture, $"after {(first.At - at).TotalSeconds:0.000} s: {first.Line}");
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: worker {victim} (shards {string.Join(",", shards)}) killed at {at.TotalSeconds:0.00} s, back at {_clock.Elapsed.TotalSeconds:0.00} s; first retry {retry}"));
                Assert.True(first.Line is not null || shards.Length == 0, $"{name}: worker {victim} killed at {at.TotalSeconds:0.0} s holding shards {string.Join(",", shards)}: no retry within {KillToRetryLimit.TotalSeconds:0} s"
                    + (driver.HasExited ? $" (the driver exited {driver.ExitCode})" : " (the call in flight is waited out)"));
                // The worker is back: wait for the driver to complete a call (it has reloaded the shard and gone on) before the next kill.
                var from = first.Line is null ? _clock.Elapsed : first.At;
                while (!driver.HasExited && log.CallAfter(from) is null)
                {
                    await Task.Delay(50);
                }
                kills.Add(new Kill(name, victim, shards, at, first.Line is null ? null : first.At - at, first.Line, log.CallAfter(from) - at));
            }
            using (var limit = new CancellationTokenSource(RunLimit))
            {
                try
                {
                    await driver.WaitForExitAsync(limit.Token);
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"{name} on the cluster did not end within {RunLimit.TotalSeconds:0} s of its last kill ({log.Calls} calls done): {log.Tail()}");
                }
            }
            string errors = await log.All;
            Assert.True(driver.ExitCode == 0, $"{name} on the cluster: exit {driver.ExitCode}: {errors}");

            using var local = JsonDocument.Parse(File.ReadAllText(localJson));
            using var remote = JsonDocument.Parse(File.ReadAllText(clusterJson));
            var expected = answer(local.RootElement);
            var actual = answer(remote.RootElement);
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                double bar = Tolerances.DistributedRestartAgreement * (name == "train" ? Math.Abs(expected[i]) : scale(expected));
                Assert.True(Math.Abs(expected[i] - actual[i]) <= bar, $"{name}: value {i}: {expected[i]:R} in one process, {actual[i]:R} through the kills");
            }
            runCalls[name] = remote.RootElement.GetProperty("cluster").GetProperty("calls").GetInt32();
            runRetries[name] = remote.RootElement.GetProperty("cluster").GetProperty("retries").GetInt32();
        }

        foreach (var k in kills)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{k.Run}: worker {k.Worker} (shards {string.Join(",", k.Shards)}) killed at {k.At.TotalSeconds:0.00} s: retry after {k.RetryAfter?.TotalSeconds:0.000} s ({k.Detection}), resumed after {k.ResumedAfter?.TotalSeconds:0.0} s"));
        }
        var idle = kills.Where(k => k.Shards.Length == 0).ToArray();
        kills = kills.Where(k => k.Shards.Length > 0).ToList();
        output.WriteLine($"kills of a worker that held no shard (not counted below): {idle.Length}");
        output.WriteLine("");
        output.WriteLine("| run | kills | calls | retries | kill → retry: median | min | max | kill → run resumed: median | max |");
        output.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var group in kills.GroupBy(k => k.Run).Append(kills.GroupBy(_ => "all").Single()))
        {
            var retry = group.Select(k => k.RetryAfter!.Value.TotalSeconds).Order().ToArray();
            var resumed = group.Where(k => k.ResumedAfter is not null).Select(k => k.ResumedAfter!.Value.TotalSeconds).Order().ToArray();
            bool all = group.Key == "all";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {group.Key} | {retry.Length} | {(all ? runCalls.Values.Sum() : runCalls[group.Key])} | {(all ? runRetries.Values.Sum() : runRetries[group.Key])} | {Median(retry):0.00} s | {retry[0]:0.00} s | {retry[^1]:0.00} s | {Median(resumed):0.0} s | {resumed.LastOrDefault():0.0} s |"));
        }
        output.WriteLine("");
        output.WriteLine("what gave the lost call up: " + string.Join(", ", kills.GroupBy(k => k.Detection).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()}")));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test wall time {testWatch.Elapsed.TotalSeconds:0} s; load average at the end {LoadAverage()}"));
        Assert.True(kills.Count >= 20, $"{kills.Count} kills of a worker holding a shard landed in the runs, issue 19 asks for at least 20: the runs ended early");
    }

    private static double Median(double[] sorted) => sorted.Length == 0 ? double.NaN
        : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;

    /// <summary>The 1-minute load average (Linux), for the figures' context.</summary>
    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();

    /// <summary>Kills the drivers and workers still running and removes the folder.</summary>
    public void Dispose() => _cluster.Dispose();
}
