using LossLandscape.Operators;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Cluster;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static LossLandscape.Bench.BenchArgs;
using static TorchSharp.torch;

namespace LossLandscape.Bench;

/// <summary>
/// Issue 12 §4: one Hessian-vector product on digits (1797 rows, one-hot ℓ = 10) with an MLP of about 10⁶ parameters
/// (64-h-h-10, h = 1000 by default), single-process against 1, 2 and 4 <c>landscape worker</c> processes on this machine;
/// the distributed time split into the slowest shard's compute, the driver's serialisation, and the rest (messaging and
/// transfer); and the strong-scaling model T(W) = C/W + t_x + t_0 fitted to the measured terms. Every time, the split's
/// terms included (each measured per product), is the median of <c>--repeats</c> products (at least 5) after a warm-up
/// product, with min and max; ratios and the model use medians.
/// Options: <c>--hidden 1000</c>, <c>--workers 1,2,4</c>, <c>--repeats 5</c>, <c>--base-port 23111</c>,
/// <c>--landscape PATH</c> (the CLI's landscape.dll; default the Release build of src/LossLandscape.Cli).
/// <para>Issue 22 §4, <c>--membership redis</c> (workers default 3): a redis-server of its own on a free port of 127.0.0.1 (Debian's
/// package), worker i on its own loopback address 127.0.0.(i + 2) registered there, and each worker count measured twice in
/// one run, without and with mutual TLS (<c>cluster init --tls</c>'s certificates), so that the cost of TLS per product is a
/// ratio of two measurements on the same machine under the same load.</para>
/// </summary>
public static class ClusterBench
{
    /// <summary>Runs the benchmark.</summary>
    public static int Run(string[] args)
    {
        TorchRuntime.EnsureInitialized();
        int hidden = Int(args, "--hidden", 1000);
        int repeats = BenchRunner.Repeats(args);
        int basePort = Int(args, "--base-port", 23111);
        bool redis = Text(args, "--membership", ClusterConfig.LocalhostMembership) == ClusterConfig.RedisMembership;
        var workerCounts = Text(args, "--workers", redis ? "3" : "1,2,4").Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
        string landscape = Text(args, "--landscape", Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../src/LossLandscape.Cli/bin/Release/net10.0/landscape.dll")));
        if (!File.Exists(landscape))
        {
            Console.Error.WriteLine($"no {landscape}: build the CLI first (dotnet build -c Release)");
            return 2;
        }

        var data = DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit"));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(hidden, ActivationRegistry.Default), new HiddenLayer(hidden, ActivationRegistry.Default)], data.OutputDim);
        var parameters = mlp.InitialParameters(1);
        var point = new NetworkPoint(mlp, parameters);
        int n = mlp.ParameterCount;
        Console.WriteLine(FormattableString.Invariant($"digits {data.Count} rows, ℓ = {data.OutputDim}; MLP {data.InputDim}-{hidden}-{hidden}-{data.OutputDim}, n = {n}; torch threads {get_num_threads()}; every time the median (min–max) of {repeats} after a warm-up"));

        Timing single;
        using (var model = point.ToModel())
        using (var map = new ResidualMap(model, data))
        {
            var op = new HessianOperator(map);
            var v = randn(n, dtype: ScalarType.Float64, generator: new Generator(3));
            single = BenchRunner.Time(repeats, () =>
            {
                using var scope = NewDisposeScope();
                op.Apply(v);
            });
        }
        Console.WriteLine($"single process: HVP {BenchRunner.S(single)}");
        Console.WriteLine();
        using var server = redis ? RedisProcess.Start() : null;
        if (server is not null)
        {
            Console.WriteLine($"membership: redis-server on {server.Endpoint}; worker i on 127.0.0.(i + 2); every worker count without and with mutual TLS");
        }
        Console.WriteLine("| workers | TLS | HVP | slowest shard's compute | serialisation (driver) | messaging + transfer | bytes moved | distributed / single (medians) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var rows = new List<(int W, bool Tls, Timing Total, Timing Compute, Timing Overhead)>();
        foreach (int w in workerCounts)
        {
            foreach (bool tls in server is null ? [false] : new[] { false, true })
            {
                string file = Path.Combine(Path.GetTempPath(), $"landscape-bench-cluster-{w}{(tls ? "-tls" : "")}.json");
                var config = server is null ? ClusterConfig.Localhost(w, basePort) : ClusterConfig.WithRedis(server.Endpoint, w, basePort, tls: tls) with { ClusterId = $"bench-{w}-{tls}" };
                File.WriteAllText(file, config.ToJson());
                if (tls)
                {
                    ClusterCertificates.Write(file, w, config.ClusterId);
                }
                var workers = Enumerable.Range(0, w).Select(i => StartWorker(landscape, file, i, server is null ? [] : ["--advertise", FormattableString.Invariant($"127.0.0.{i + 2}")])).ToArray();
                try
                {
                    using var host = ClusterHosting.ConnectAsync(config, default, tls ? ClusterCertificates.ForDriver(file) : null).GetAwaiter().GetResult();
                    var session = new ClusterSession(host.Services.GetRequiredService<IClusterClient>(), config, new DataSource("builtin:digits", [], "digit"), data, point);
                    session.Open();
                    var op = new HessianOperator(session);
                    var v = randn(n, dtype: ScalarType.Float64, generator: new Generator(3));
                    // The split of each product, read from the session's counters (reset before it, untimed); [0] is the warm-up's.
                    var split = new List<(double Compute, double Serialize, double Transfer, double Bytes)>();
                    var t = BenchRunner.Time(repeats, () =>
                    {
                        using (var scope = NewDisposeScope())
                        {
                            op.Apply(v);
                        }
                        var x = session.Timings;
                        int calls = x.Calls;
                        split.Add((x.ComputeSeconds / calls, x.SerializeSeconds / calls, x.TransferSeconds / calls, (double)(x.BytesSent + x.BytesReceived) / calls));
                    }, before: session.Timings.Reset);
                    split.RemoveAt(0);
                    var compute = Timing.Of(split.Select(x => x.Compute).ToArray());
                    var serialize = Timing.Of(split.Select(x => x.Serialize).ToArray());
                    var transfer = Timing.Of(split.Select(x => x.Transfer).ToArray());
                    var fixedCost = Timing.Of(split.Select(x => x.Serialize + x.Transfer).ToArray());
                    double bytes = split.Average(x => x.Bytes);
                    rows.Add((w, tls, t, compute, fixedCost));
                    string mode = server is null ? "—" : tls ? "on" : "off";
                    Console.WriteLine(FormattableString.Invariant($"| {w} | {mode} | {BenchRunner.S(t)} | {BenchRunner.S(compute)} | {BenchRunner.S(serialize)} | {BenchRunner.S(transfer)} | {bytes / 1e6:0.0} MB | {t.Median / single.Median:0.00} |"));
                    host.StopAsync().WaitAsync(ClusterHosting.CloseTimeout).GetAwaiter().GetResult();
                }
                finally
                {
                    foreach (var p in workers)
                    {
                        p.Kill();
                        p.WaitForExit();
                        p.Dispose();
                    }
                }
            }
        }
        if (server is not null)
        {
            Console.WriteLine();
            foreach (int w in workerCounts)
            {
                var off = rows.Single(r => r.W == w && !r.Tls);
                var on = rows.Single(r => r.W == w && r.Tls);
                Console.WriteLine(FormattableString.Invariant(
                    $"TLS cost, {w} workers: HVP {on.Total.Median / off.Total.Median:0.00}× (medians), messaging + transfer + serialisation {on.Overhead.Median / off.Overhead.Median:0.00}× ({off.Overhead.Median:0.000} → {on.Overhead.Median:0.000} s per product)"));
            }
        }

        // The single-process baseline again: on a shared machine the load moves between the two measurements.
        using (var model = point.ToModel())
        using (var map = new ResidualMap(model, data))
        {
            var op = new HessianOperator(map);
            var v = randn(n, dtype: ScalarType.Float64, generator: new Generator(3));
            var again = BenchRunner.Time(repeats, () =>
            {
                using var scope = NewDisposeScope();
                op.Apply(v);
            });
            Console.WriteLine($"single process, measured again after the cluster runs: HVP {BenchRunner.S(again)}");
        }

        // The strong-scaling model T(W) = C/W + t_x + t_0: C the compute of one shard holding all the data (W = 1's slowest
        // shard compute, median, measured in the same kind of process as the others), t_x + t_0 the mean over W of the median
        // serialisation + messaging + transfer per product (it does not fall with W: every shard gets and returns n values).
        // With W > 1 only (redis), C is W times the slowest shard's compute: the shards hold equal rows.
        foreach (bool tls in rows.Select(r => r.Tls).Distinct())
        {
            var measured = rows.Where(r => r.Tls == tls).ToArray();
            double overhead = measured.Average(r => r.Overhead.Median);
            double c = measured.FirstOrDefault(r => r.W == 1) is { W: 1 } one ? one.Compute.Median : measured.Average(r => r.W * r.Compute.Median);
            Console.WriteLine();
            string label = server is null ? "" : tls ? " (TLS on)" : " (TLS off)";
            Console.WriteLine(FormattableString.Invariant($"model{label}: T(W) = C/W + t_x + t_0 with C = {c:0.000} s (one shard, all rows; median), t_x + t_0 = {overhead:0.000} s (mean over W of the medians)"));
            foreach (int w in new[] { 8, 16, 32, 64 })
            {
                double t = c / w + overhead;
                Console.WriteLine(FormattableString.Invariant($"  W = {w,2}: predicted {t:0.000} s, speed-up {c / t:0.0}× over one shard"));
            }
            // A shard is worth sending while its compute exceeds the fixed cost: d_s · C/d ≥ t_x + t_0.
            Console.WriteLine(FormattableString.Invariant($"  smallest shard worth sending: d_s ≥ (t_x + t_0)·d/C = {overhead * data.Count / c:0} rows (at n = {n})"));
        }
        return 0;
    }

    private static Process StartWorker(string landscape, string config, int index, string[] options)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { landscape, "worker", "--cluster", config, "--index", index.ToString(CultureInfo.InvariantCulture) }.Concat(options))
        {
            info.ArgumentList.Add(a);
        }
        var process = Process.Start(info)!;
        string? line;
        while ((line = process.StandardError.ReadLine()) is not null && !line.Contains("ready", StringComparison.Ordinal))
        {
        }
        _ = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        return process;
    }
}

/// <summary>A redis-server of the bench's own (Debian's package), on a free port of 127.0.0.1, without persistence, killed on dispose.</summary>
internal sealed class RedisProcess : IDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private RedisProcess(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Endpoint = FormattableString.Invariant($"127.0.0.1:{port}");
    }

    /// <summary><c>127.0.0.1:PORT</c>.</summary>
    public string Endpoint { get; }

    /// <summary>Starts the server and waits until it accepts a connection (at most 30 s).</summary>
    /// <exception cref="InvalidOperationException">No redis-server installed, or it did not start.</exception>
    public static RedisProcess Start()
    {
        const string binary = "/usr/bin/redis-server";
        if (!File.Exists(binary))
        {
            throw new InvalidOperationException("bench cluster --membership redis needs Debian's redis-server (apt-get install redis-server)");
        }
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        string directory = Directory.CreateTempSubdirectory("landscape-bench-redis-").FullName;
        var info = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "no" })
        {
            info.ArgumentList.Add(a);
        }
        var process = Process.Start(info)!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                client.Connect(System.Net.IPAddress.Loopback, port);
                return new RedisProcess(process, directory, port);
            }
            catch (System.Net.Sockets.SocketException)
            {
                Thread.Sleep(50);
            }
        }
        process.Kill();
        throw new InvalidOperationException($"redis-server did not start on port {port}");
    }

    /// <summary>Stops the server and removes its folder.</summary>
    public void Dispose()
    {
        _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
