using LossLandscape.Operators;
using System.Diagnostics;
using System.Text.Json;
using LossLandscape.Cluster;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;

namespace LossLandscape.Tests;

/// <summary>
/// Three <c>landscape worker</c> processes on localhost and <c>landscape spectrum --cluster</c> runs against them: one worker
/// killed with SIGKILL mid-run and restarted (the run completes, reports the retry, and gets the single-process eigenvalues);
/// then every worker killed (the run fails with exit 1 and one line naming a shard).
/// </summary>
[Collection(WorkerProcessesCollection.Name)]
public sealed class ClusterProcessTests : IDisposable
{
    /// <summary>A shard call's timeout in the test's cluster file: 5 s, a hundred times a product here, so a dead worker is noticed quickly.</summary>
    private const double TestCallTimeoutSeconds = 5;

    /// <summary>Retry window of the run that survives a restart: 40 s, room for the restart and Orleans' failure detection.</summary>
    private const double TestRetryWindowSeconds = 40;

    /// <summary>Retry window of the run whose workers never come back: 4 s, so the failing run ends quickly.</summary>
    private const double ShortRetryWindowSeconds = 4;

    /// <summary>The product after which the surviving run pauses for the kill: the 3rd, early in a Lanczos run of about 40.</summary>
    private const int RestartPauseAfter = 3;

    /// <summary>The product after which the failing run pauses for the kill: the 2nd.</summary>
    private const int FailPauseAfter = 2;

    private readonly KillableCluster _cluster = new(3);

    /// <summary>Starts <c>landscape</c>; with <paramref name="pauseAfter"/>, the driver pauses after that product until <paramref name="pauseAfter"/>'s file exists.</summary>
    private Process Start((int Products, string File)? pauseAfter, params string[] arguments) => StartIn(null, pauseAfter, arguments);

    /// <summary>As <see cref="Start((int Products, string File)?, string[])"/>, in the working directory <paramref name="directory"/> (default the cluster's folder).</summary>
    private Process StartIn(string? directory, (int Products, string File)? pauseAfter, params string[] arguments) =>
        _cluster.Start(pauseAfter is { } pause
            ? new Dictionary<string, string>
            {
                ["LANDSCAPE_CLUSTER_PAUSE_AFTER_PRODUCTS"] = pause.Products.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["LANDSCAPE_CLUSTER_PAUSE_FILE"] = pause.File,
            }
            : null, directory, arguments);

    private void StartWorker(string config, int index) => _cluster.StartWorker(config, index);

    /// <summary>Reads a driver's stderr: <c>Paused</c> completes at its "paused after" line (or its end), <c>All</c> at its end.</summary>
    private static (Task Paused, Task<string> All) ReadUntilPaused(Process driver)
    {
        var loaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var all = new TaskCompletionSource<string>();
        // A thread of its own: the line must be seen when it is written, not when the thread pool gets round to it.
        new Thread(() =>
        {
            var text = new System.Text.StringBuilder();
            string? line;
            while ((line = driver.StandardError.ReadLine()) is not null)
            {
                text.AppendLine(line);
                if (line.Contains("paused after", StringComparison.Ordinal))
                {
                    loaded.TrySetResult();
                }
            }
            loaded.TrySetResult();
            all.SetResult(text.ToString());
        }) { IsBackground = true }.Start();
        return (loaded.Task, all.Task);
    }

    private void Kill(int index) => _cluster.Kill(index);

    private string WriteConfig(string name, ClusterConfig config) => _cluster.WriteConfig(name, config);

    /// <summary>
    /// Runs a driver that pauses after its <see cref="RestartPauseAfter"/>-th product (the test hook), kills worker
    /// <paramref name="victim"/> in the pause, releases the driver and restarts the worker: the failure lands mid-run whatever
    /// the machine's load. Returns the driver's exit code and stderr.
    /// </summary>
    private async Task<(int ExitCode, string Errors)> RunThroughRestart(string name, int victim, string clusterFile, string[] arguments, int limitSeconds = 90)
    {
        string release = _cluster.PathOf("release-" + name);
        var driver = Start((RestartPauseAfter, release), arguments);
        var output = driver.StandardOutput.ReadToEndAsync();
        var errors = ReadUntilPaused(driver);
        await Task.WhenAny(errors.Paused, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(errors.Paused.IsCompleted && !driver.HasExited, $"the {name} driver did not pause: " + (driver.HasExited ? await errors.All : "still running"));
        Kill(victim);
        File.WriteAllText(release, "");
        StartWorker(clusterFile, victim);
        await driver.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(limitSeconds)).Token);
        string all = await errors.All;
        await output;
        return (driver.ExitCode, all);
    }

    [Fact]
    public async Task A_Killed_And_Restarted_Worker_Is_Retried_And_A_Cluster_That_Never_Returns_Fails_Naming_The_Shard()
    {
        TorchRuntime.EnsureInitialized();
        var config = ClusterConfig.Localhost(3, KillableCluster.FreeBasePort(3)) with { CallTimeoutSeconds = TestCallTimeoutSeconds, RetryWindowSeconds = TestRetryWindowSeconds };
        string clusterFile = WriteConfig("cluster.json", config);
        string shortFile = WriteConfig("short.json", config with { RetryWindowSeconds = ShortRetryWindowSeconds });
        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(64, ActivationRegistry.Default)], data.OutputDim);
        var point = new NetworkPoint(mlp, mlp.InitialParameters(5));
        string model = _cluster.PathOf("model.json");
        ModelFile.Save(model, point);
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Task.Run(() => StartWorker(clusterFile, i))));

        // The driver pauses after its 3rd product (the test hook), the worker is killed in the pause, the run goes on
        // against the dead worker, and the worker comes back: the failure lands mid-run whatever the machine's load.
        string[] spectrum = ["spectrum", "--model", model, "--data", "builtin:digits", "--one-hot", "digit", "--k", "10", "--seed", "1",
            "--tolerance", "1e-15", "--max-iterations", "250"];
        string json = _cluster.PathOf("restart.json");
        var (exit, errors) = await RunThroughRestart("spectrum", 1, clusterFile, [.. spectrum, "--cluster", clusterFile, "--json", json]);
        Assert.True(exit == 0, $"exit {exit}: {errors}");
        Assert.Contains("retrying", errors, StringComparison.Ordinal);

        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var distributed = doc.RootElement.GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.True(doc.RootElement.GetProperty("cluster").GetProperty("retries").GetInt32() >= 1);
        using var torchScope = TorchSharp.torch.NewDisposeScope();
        using var local = point.ToModel();
        using var map = new ResidualMap(local, data);
        var single = HessianSpectrum.Compute(map, new SpectrumOptions(SpectrumMethod.Lanczos, CurvatureKind.Hessian, 10, SpectrumEnd.Largest, 1e-15, 250, 1)).Eigenvalues;
        Assert.Equal(10, distributed.Length);
        for (int i = 0; i < 10; i++)
        {
            Assert.True(Math.Abs(single[i] - distributed[i]) <= Tolerances.DistributedRestartAgreement * Math.Abs(single[0]), $"λ{i}: {single[i]:R} here, {distributed[i]:R} on the cluster");
        }

        // L-BFGS training through the same kill and restart: every line-search trial is a distributed L and ∇L, and the retried
        // calls give the single-process losses.
        string[] train = ["train", "--data", "builtin:digits", "--one-hot", "digit", "--hidden", "16", "--optimizer", "lbfgs", "--steps", "6", "--seed", "2"];
        string localTrain = _cluster.PathOf("train-local.json"), remoteTrain = _cluster.PathOf("train-remote.json");
        var (code, _, err) = CliTests.Run([.. train, "--out", _cluster.PathOf("t1.json"), "--json", localTrain]);
        Assert.True(code == 0, err);
        var (trainExit, trainErrors) = await RunThroughRestart("train", 2, clusterFile, [.. train, "--out", _cluster.PathOf("t2.json"), "--cluster", clusterFile, "--json", remoteTrain]);
        Assert.True(trainExit == 0, $"exit {trainExit}: {trainErrors}");
        Assert.Contains("retrying", trainErrors, StringComparison.Ordinal);
        using (var a = JsonDocument.Parse(File.ReadAllText(localTrain)))
        using (var b = JsonDocument.Parse(File.ReadAllText(remoteTrain)))
        {
            Assert.True(b.RootElement.GetProperty("cluster").GetProperty("retries").GetInt32() >= 1);
            var x = a.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var y = b.RootElement.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            Assert.Equal(x.Length, y.Length);
            for (int i = 0; i < x.Length; i++)
            {
                Assert.True(Math.Abs(x[i] - y[i]) <= Tolerances.DistributedTrainingAgreement * Math.Abs(x[i]), $"L after step {i}: {x[i]:R} here, {y[i]:R} on the cluster");
            }
        }

        // A driver on another machine whose data file differs from the workers' (here: another working directory, the same
        // relative path): the workers' fingerprints refuse it, exit 2 with one line, before any sum.
        string elsewhere = Directory.CreateDirectory(_cluster.PathOf("driver")).FullName;
        File.WriteAllText(_cluster.PathOf("rows.csv"), "x1,x2,y\n0,0,0.5\n1,0,-0.3\n0,1,0.8\n1,1,0.1\n0.5,0.2,-0.6\n0.3,0.9,0.4\n");
        File.WriteAllText(Path.Combine(elsewhere, "rows.csv"), "x1,x2,y\n0,0,0.5\n1,0,-0.3\n0,1,0.8\n1,1,0.1\n0.5,0.2,-0.6\n0.3,0.9,0.7\n");
        var small = new Mlp(2, [new HiddenLayer(4, ActivationRegistry.Default)], 1);
        ModelFile.Save(Path.Combine(elsewhere, "m.json"), new NetworkPoint(small, small.InitialParameters(1)));
        var mismatched = StartIn(elsewhere, null, "evaluate", "--model", "m.json", "--data", "rows.csv", "--cluster", clusterFile);
        var mismatchedErr = mismatched.StandardError.ReadToEndAsync();
        _ = mismatched.StandardOutput.ReadToEndAsync();
        await mismatched.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        var mismatchLines = (await mismatchedErr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(mismatched.ExitCode == 2, $"exit {mismatched.ExitCode}: {string.Join(" | ", mismatchLines)}");
        Assert.Single(mismatchLines, l => l.StartsWith("landscape: error:", StringComparison.Ordinal));
        Assert.Contains("not the same data", mismatchLines[^1], StringComparison.Ordinal);

        // Every worker gone for good in the pause: the run fails (exit 1) within the short retry window, one line naming a shard.
        string releaseFail = _cluster.PathOf("release-fail");
        var failing = Start((FailPauseAfter, releaseFail), [.. spectrum, "--cluster", shortFile]);
        var failingErr = ReadUntilPaused(failing);
        _ = failing.StandardOutput.ReadToEndAsync();
        await Task.WhenAny(failingErr.Paused, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(failingErr.Paused.IsCompleted && !failing.HasExited, "the failing driver did not pause: " + (failing.HasExited ? await failingErr.All : "still running"));
        for (int i = 0; i < 3; i++)
        {
            Kill(i);
        }
        File.WriteAllText(releaseFail, "");
        await failing.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        string failErrors = await failingErr.All;
        Assert.True(failing.ExitCode == 1, $"exit {failing.ExitCode}: {failErrors}");
        var lastLine = failErrors.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Assert.Matches(@"^landscape: error: shard \d+ did not answer", lastLine);
    }

    [Fact]
    public async Task Slice_Connect_Report_And_Mini_Batch_Training_Survive_A_Killed_And_Restarted_Worker()
    {
        // Issue 20: the commands that gained --cluster, each through a kill of a worker mid-run (after its 3rd distributed
        // call) and its restart, end with the single-process answer (1e-10 relative).
        TorchRuntime.EnsureInitialized();
        var config = ClusterConfig.Localhost(3, KillableCluster.FreeBasePort(3)) with { CallTimeoutSeconds = TestCallTimeoutSeconds, RetryWindowSeconds = TestRetryWindowSeconds };
        string clusterFile = WriteConfig("cluster.json", config);
        await Task.WhenAll(Enumerable.Range(0, 3).Select(i => Task.Run(() => StartWorker(clusterFile, i))));
        string[] iris = ["--data", "builtin:iris", "--one-hot", "species"];
        string model = _cluster.PathOf("iris.json");
        // Standardized inputs: J has full column rank (43) with a resolved gap; unstandardized, this point has rank 27 decided or not by rounding noise.
        Assert.Equal(0, CliTests.Run(["init", .. iris, "--hidden", "5", "--seed", "4", "--standardize", "--out", model]).Code);
        // Two points of M on six rows (absolute path: the workers read it too) for connect.
        string rows = _cluster.PathOf("six.csv");
        File.WriteAllText(rows, "x1,x2,y\n0,0,0.5\n1,0,-0.3\n0,1,0.8\n1,1,0.1\n0.5,0.2,-0.6\n0.3,0.9,0.4\n");
        string a = _cluster.PathOf("a.json"), b = _cluster.PathOf("b.json");
        foreach (var (path, seed) in new[] { (a, "1"), (b, "2") })
        {
            var trained = CliTests.Run(["train", "--data", rows, "--hidden", "8", "--optimizer", "gauss-newton", "--steps", "30", "--seed", seed, "--out", path]);
            Assert.True(trained.Code == 0, trained.Err);
        }
        var runs = new (string Name, string[] Arguments, Func<JsonElement, double[]> Answer)[]
        {
            ("slice", ["slice", "--model", model, .. iris, "--directions", "random", "--dims", "2", "--grid", "5", "--seed", "3"],
                j => j.GetProperty("loss").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(e => e.GetDouble())).ToArray()),
            ("connect", ["connect", "--model", a, "--to", b, "--data", rows, "--method", "linear,bezier", "--budget", "30", "--points", "5", "--seed", "2"],
                j => j.GetProperty("methods").EnumerateArray().SelectMany(m => new[] { m.GetProperty("maxLoss").GetDouble(), m.GetProperty("barrier").GetDouble() }).ToArray()),
            ("sgd", ["train", .. iris, "--hidden", "5", "--optimizer", "sgd", "--batch-size", "16", "--steps", "12", "--loss-every", "1", "--seed", "6"],
                j => j.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray()),
            ("adam", ["train", .. iris, "--hidden", "5", "--optimizer", "adam", "--batch-size", "16", "--steps", "12", "--loss-every", "1", "--seed", "6"],
                j => j.GetProperty("lossHistory").EnumerateArray().Select(e => e.GetDouble()).ToArray()),
        };
        foreach (var (name, arguments, answer) in runs)
        {
            string[] output = name switch
            {
                "slice" => ["--out", _cluster.PathOf($"{name}.svg")],
                "sgd" or "adam" => ["--out", _cluster.PathOf($"{name}-model.json")],
                _ => [],
            };
            string localJson = _cluster.PathOf($"{name}-local.json"), remoteJson = _cluster.PathOf($"{name}-remote.json");
            var (code, _, err) = CliTests.Run([.. arguments, .. output, "--json", localJson]);
            Assert.True(code == 0, $"{name} here: {err}");
            var (exit, errors) = await RunThroughRestart(name, 1 + (name.Length % 2), clusterFile, [.. arguments, .. output, "--cluster", clusterFile, "--json", remoteJson]);
            Assert.True(exit == 0, $"{name}: exit {exit}: {errors}");
            Assert.Contains("retrying", errors, StringComparison.Ordinal);
            using var here = JsonDocument.Parse(File.ReadAllText(localJson));
            using var there = JsonDocument.Parse(File.ReadAllText(remoteJson));
            Assert.True(there.RootElement.GetProperty("cluster").GetProperty("retries").GetInt32() >= 1, $"{name}: no retry recorded");
            var x = answer(here.RootElement);
            var y = answer(there.RootElement);
            Assert.NotEmpty(x);
            Assert.Equal(x.Length, y.Length);
            for (int i = 0; i < x.Length; i++)
            {
                Assert.True(Math.Abs(x[i] - y[i]) <= Tolerances.DistributedRestartAgreement * Math.Max(1.0, Math.Abs(x[i])), $"{name}: value {i}: {x[i]:R} here, {y[i]:R} through the restart");
            }
        }

        // The report through the same kill and restart: the page's table cells, but for the timings, are the single-process ones.
        string[] report = ["report", "--model", model, .. iris, "--grid", "5", "--walk-steps", "0"];
        var local = CliTests.Run([.. report, "--out", _cluster.PathOf("report-here")]);
        Assert.True(local.Code == 0, local.Err);
        // The page takes hundreds of distributed calls (SLQ's probes alone are 900 products): 300 s on a loaded machine.
        var (reportExit, reportErrors) = await RunThroughRestart("report", 2, clusterFile, [.. report, "--out", _cluster.PathOf("report-there"), "--cluster", clusterFile], limitSeconds: 300);
        Assert.True(reportExit == 0, $"report: exit {reportExit}: {reportErrors}");
        Assert.Contains("retrying", reportErrors, StringComparison.Ordinal);
ReportPages.AssertSameCells(_cluster.PathOf("report-here/index.html"), _cluster.PathOf("report-there/index.html"));
    }

    /// <summary>Kills the drivers and workers still running and removes the folder.</summary>
    public void Dispose() => _cluster.Dispose();
}
