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
            Console.WriteLine($"membership: redis-server on {server.Endpoint}; worker i on 127.0.0.(i + 2); for each worker count two clusters, without and with mutual TLS, up at once, their products alternated (off, on, on, off, …) so that both see the same load");
        }
        Console.WriteLine("| workers | TLS | HVP | slowest shard's compute | serialisation (driver) | messaging + transfer | bytes moved | distributed / single (medians) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var rows = new List<(int W, bool Tls, Timing Total, Timing Compute, Timing Overhead)>();
        foreach (int w in workerCounts)
        {
            bool[] modes = server is null ? [false] : [false, true];
            var clusters = new List<BenchCluster>();
            try
            {
                foreach (bool tls in modes)
                {
                    clusters.Add(BenchCluster.Start(landscape, server?.Endpoint, w, basePort + (tls ? 2 * w : 0), tls, data, point));
                }
                var v = randn(n, dtype: ScalarType.Float64, generator: new Generator(3));
                foreach (var c in clusters)
                {
                    c.Product(v); // warm-up
                }
                var samples = clusters.Select(_ => new List<Product>()).ToArray();
                for (int r = 0; r < repeats; r++)
                {
                    // Alternate which cluster goes first: a load that drifts within a pair favours neither.
                    foreach (int k in r % 2 == 0 ? Enumerable.Range(0, clusters.Count) : Enumerable.Range(0, clusters.Count).Reverse())
                    {
                        samples[k].Add(clusters[k].Product(v));
                    }
                }
                for (int k = 0; k < clusters.Count; k++)
                {
                    var x = samples[k];
                    var total = Timing.Of(x.Select(p => p.Total).ToArray());
                    var compute = Timing.Of(x.Select(p => p.Compute).ToArray());
                    var serialize = Timing.Of(x.Select(p => p.Serialize).ToArray());
                    var transfer = Timing.Of(x.Select(p => p.Transfer).ToArray());
                    var fixedCost = Timing.Of(x.Select(p => p.Serialize + p.Transfer).ToArray());
                    rows.Add((w, clusters[k].Tls, total, compute, fixedCost));
                    string mode = server is null ? "—" : clusters[k].Tls ? "on" : "off";
                    Console.WriteLine(FormattableString.Invariant($"| {w} | {mode} | {BenchRunner.S(total)} | {BenchRunner.S(compute)} | {BenchRunner.S(serialize)} | {BenchRunner.S(transfer)} | {x.Average(p => p.Bytes) / 1e6:0.0} MB | {total.Median / single.Median:0.00} |"));
                }
                if (clusters.Count == 2)
                {
                    // The cost of TLS per product: the ratio within each pair of products (on / off), median over pairs.
                    static double Median(IEnumerable<double> values)
                    {
                        var sorted = values.Order().ToArray();
                        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
                    }
                    var pairs = samples[0].Zip(samples[1]).ToArray();
                    double hvp = Median(pairs.Select(p => p.Second.Total / p.First.Total));
                    double overheadRatio = Median(pairs.Select(p => (p.Second.Serialize + p.Second.Transfer) / (p.First.Serialize + p.First.Transfer)));
                    double extra = Median(pairs.Select(p => p.Second.Serialize + p.Second.Transfer - p.First.Serialize - p.First.Transfer));
                    Console.WriteLine(FormattableString.Invariant(
                        $"TLS cost, {w} workers (median over {pairs.Length} alternated pairs): HVP on/off {hvp:0.00}×; serialisation + messaging + transfer on/off {overheadRatio:0.00}×, {extra:+0.000;-0.000} s per product"));
                }
            }
            finally
            {
                foreach (var c in clusters)
                {
                    c.Dispose();
                }
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

    /// <summary>One product's time split: wall, the slowest shard's compute, the driver's serialisation, the rest, and bytes moved.</summary>
    private sealed record Product(double Total, double Compute, double Serialize, double Transfer, double Bytes);

    /// <summary>A cluster of the bench's own: its workers, the driver's client and a session holding digits and the network.</summary>
    private sealed class BenchCluster : IDisposable
    {
        private readonly Process[] _workers;
        private readonly IHost _host;
        private readonly ClusterSession _session;
        private readonly HessianOperator _operator;

        private BenchCluster(bool tls, Process[] workers, IHost host, ClusterSession session)
        {
            Tls = tls;
            _workers = workers;
            _host = host;
            _session = session;
            _operator = new HessianOperator(session);
        }

        /// <summary>Whether its connections are mutual TLS.</summary>
        public bool Tls { get; }

        /// <summary>
        /// Writes a cluster file of <paramref name="w"/> workers (localhost membership where <paramref name="redis"/> is null, else
        /// that Redis, workers on 127.0.0.(i + 2)), with its certificates for <paramref name="tls"/>, starts the workers, connects
        /// and loads the shards.
        /// </summary>
        public static BenchCluster Start(string landscape, string? redis, int w, int basePort, bool tls, Dataset data, NetworkPoint point)
        {
            string file = Path.Combine(Path.GetTempPath(), $"landscape-bench-cluster-{w}{(tls ? "-tls" : "")}.json");
            var config = redis is null ? ClusterConfig.Localhost(w, basePort) : ClusterConfig.WithRedis(redis, w, basePort, tls: tls) with { ClusterId = $"bench-{w}-{(tls ? "tls" : "plain")}" };
            File.WriteAllText(file, config.ToJson());
            if (tls)
            {
                ClusterCertificates.Write(file, w, config.ClusterId);
            }
            var workers = Enumerable.Range(0, w).Select(i => StartWorker(landscape, file, i, redis is null ? [] : ["--advertise", FormattableString.Invariant($"127.0.0.{i + 2}")])).ToArray();
            try
            {
                var host = ClusterHosting.ConnectAsync(config, default, tls ? ClusterCertificates.ForDriver(file) : null).GetAwaiter().GetResult();
                var session = new ClusterSession(host.Services.GetRequiredService<IClusterClient>(), config, new DataSource("builtin:digits", [], "digit"), data, point);
                session.Open();
                return new BenchCluster(tls, workers, host, session);
            }
            catch
            {
                Stop(workers);
                throw;
            }
        }

        /// <summary>One HVP, timed, its split read from the session's counters (reset before it, untimed).</summary>
        public Product Product(Tensor v)
        {
            _session.Timings.Reset();
            var watch = Stopwatch.StartNew();
            using (var scope = NewDisposeScope())
            {
                _operator.Apply(v);
            }
            double total = watch.Elapsed.TotalSeconds;
            var x = _session.Timings;
            int calls = x.Calls;
            return new Product(total, x.ComputeSeconds / calls, x.SerializeSeconds / calls, x.TransferSeconds / calls, (double)(x.BytesSent + x.BytesReceived) / calls);
        }

        /// <summary>Disconnects and kills the workers.</summary>
        public void Dispose()
        {
            _session.Dispose();
            try
            {
                _host.StopAsync().WaitAsync(ClusterHosting.CloseTimeout).GetAwaiter().GetResult();
            }
            catch (TimeoutException)
            {
            }
            _host.Dispose();
            Stop(_workers);
        }

        private static void Stop(Process[] workers)
        {
            foreach (var p in workers)
            {
                p.Kill();
                p.WaitForExit();
                p.Dispose();
            }
        }
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
