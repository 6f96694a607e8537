using System.CommandLine;
using LossLandscape.Problem;
using System.Globalization;
using LossLandscape.Cluster;
using LossLandscape.Data;
using LossLandscape.Models;
using Microsoft.Extensions.Hosting;

namespace LossLandscape.Cli;

/// <summary>
/// <c>--cluster CONFIG</c> on the commands that sum over the data: the driver joins the cluster the file names as an Orleans
/// client and runs the command's sums on the shard workers. Without the option nothing of Orleans is created.
/// </summary>
internal static class ClusterOptions
{
    /// <summary>The option.</summary>
    public static Option<string?> Cluster() => new("--cluster")
    {
        Description = "run the sums over the data on the workers of this cluster file (landscape cluster init; landscape worker --cluster FILE --index I)",
    };

    /// <summary>
    /// Loads the cluster file, connects, and loads every shard with the run's data and model. Each retry is reported on
    /// stderr as it happens. The caller disposes the result (the client disconnects).
    /// </summary>
    /// <param name="context">Where the retries and the loading line are written.</param>
    /// <param name="settings">The command's data options (the workers read the same source) and batch size.</param>
    /// <param name="path">The cluster file.</param>
    /// <param name="rows">The driver's copy of the data.</param>
    /// <param name="point">The starting point.</param>
    /// <param name="loss">The loss (default the squared loss, a = 2).</param>
    /// <param name="batchSize">Rows per autograd batch within a shard, or null for all.</param>
    /// <param name="cancellation">The session's token, checked before every round of shard calls (<see cref="ClusterSession.Cancellation"/>).</param>
    /// <exception cref="LandscapeInputException">A bad file, no silo reachable, more shards than rows, or workers that read other data.</exception>
    public static ClusterConnection Open(CliContext context, LandscapeSettings settings, string path, Dataset rows, NetworkPoint point, LossFunction? loss = null, int? batchSize = null,
        CancellationToken cancellation = default)
    {
        var config = ClusterConfig.Load(path);
        var data = settings.Data ?? throw new InvalidOperationException("--cluster needs the data options");
        var source = new DataSource(data.Source ?? DatasetLoader.DefaultSource, data.Targets, data.OneHot, data.Dedupe);
        if (config.Shards > rows.Count)
        {
            throw new LandscapeInputException($"--cluster: {path} asks for {config.Shards} shards of {rows.Count} rows: every shard needs at least one row");
        }
        var identity = config.Tls ? ClusterCertificates.ForDriver(path) : null;
        var host = ClusterHosting.ConnectAsync(config, default, identity).GetAwaiter().GetResult();
        try
        {
            var session = new ClusterSession(host.Services.GetService(typeof(IClusterClient)) as IClusterClient ?? throw new InvalidOperationException("no Orleans client"),
                config, source, rows, point, (loss ?? LossFunction.Squared()).Exponent, batchSize, cancellation, (loss ?? LossFunction.Squared()).Kind);
            var err = context.Err;
            session.OnRetry = r =>
            {
                lock (err)
                {
                    err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"landscape: shard {r.Shard}: {r.What} failed after {r.Seconds:0.0} s (attempt {r.Attempt}: {r.Reason}); retrying"));
                }
            };
            session.Open();
            session.AfterCall = TestHooks(err);
            err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"landscape: cluster: {config.Shards} shards of {rows.Count} rows loaded on {session.Silos.Distinct().Count()} of {config.Workers.Count} workers"));
            return new ClusterConnection(host, session);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>The test hook's variable: the number of distributed products after which the driver pauses.</summary>
    public const string PauseAfterProductsVariable = "LANDSCAPE_CLUSTER_PAUSE_AFTER_PRODUCTS";

    /// <summary>The test hook's variable: the file whose existence releases the pause.</summary>
    public const string PauseFileVariable = "LANDSCAPE_CLUSTER_PAUSE_FILE";

    /// <summary>The test hook's variable: 1 writes a line on stderr after every distributed call.</summary>
    public const string LogCallsVariable = "LANDSCAPE_CLUSTER_LOG_CALLS";

    /// <summary>How often a paused driver looks for the release file: 50 ms, short beside a worker's restart (seconds).</summary>
    private static readonly TimeSpan PausePoll = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Test hooks, off unless their variables are set. With <see cref="LogCallsVariable"/> = 1 the driver writes
    /// <c>landscape: cluster: call N done</c> on stderr after every distributed call: a test that kills workers at random
    /// moments sees when the run has resumed. With both <see cref="PauseAfterProductsVariable"/> (N ≥ 1) and
    /// <see cref="PauseFileVariable"/>, after the N-th distributed product the driver writes
    /// <c>landscape: cluster: paused after N products</c> on stderr and waits until the file exists: a test kills (and
    /// restarts) workers in that pause, so a failure lands mid-run at a fixed product, whatever the machine's load, instead of
    /// at a time that may fall after the run has ended.
    /// </summary>
    private static Action<int>? TestHooks(TextWriter err)
    {
        bool log = Environment.GetEnvironmentVariable(LogCallsVariable) == "1";
        bool pause = int.TryParse(Environment.GetEnvironmentVariable(PauseAfterProductsVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out int after) && after >= 1
            && Environment.GetEnvironmentVariable(PauseFileVariable) is { Length: > 0 };
        if (!log && !pause)
        {
            return null;
        }
        string file = Environment.GetEnvironmentVariable(PauseFileVariable) ?? "";
        return calls =>
        {
            if (log)
            {
                lock (err)
                {
                    err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"landscape: cluster: call {calls} done"));
                }
            }
            if (!pause || calls != after)
            {
                return;
            }
            lock (err)
            {
                err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"landscape: cluster: paused after {calls} products until {file} exists"));
                err.Flush();
            }
            while (!File.Exists(file))
            {
                Thread.Sleep(PausePoll);
            }
        };
    }
}

/// <summary>An open cluster client and its session; disposing disconnects.</summary>
/// <param name="Host">The client's host.</param>
/// <param name="Session">The sharded problem.</param>
internal sealed record ClusterConnection(IHost Host, ClusterSession Session) : IDisposable
{
    /// <summary>What the JSON and the table say about the cluster.</summary>
    public ClusterOutput Output() => new(Session.Config.Shards, Session.Config.Workers.Count, Session.Silos, Session.Retries.Count,
        Session.Retries.Select(r => string.Create(CultureInfo.InvariantCulture, $"shard {r.Shard}: {r.What} attempt {r.Attempt} after {r.Seconds:0.000} s: {r.Reason}")).ToArray(),
        Session.Timings.Calls, Session.Timings.WallSeconds, Session.Timings.ComputeSeconds, Session.Timings.SerializeSeconds, Session.Timings.TransferSeconds);

    /// <summary>Releases the session's replica and stops the client.</summary>
    public void Dispose()
    {
        Session.Dispose();
        try
        {
            Host.StopAsync().WaitAsync(ClusterHosting.CloseTimeout).GetAwaiter().GetResult();
        }
        catch (TimeoutException)
        {
            // A client that cannot say goodbye to a dead gateway is disposed anyway.
        }
        Host.Dispose();
    }
}

/// <summary>The cluster part of a command's output.</summary>
/// <param name="Shards">Shards the data was split into.</param>
/// <param name="Workers">Workers in the cluster file.</param>
/// <param name="ShardSilos">The silo that last loaded each shard.</param>
/// <param name="Retries">Shard calls retried.</param>
/// <param name="RetryLog">Each retry, one line.</param>
/// <param name="Calls">Distributed calls (products and sums).</param>
/// <param name="WallSeconds">Their wall time.</param>
/// <param name="ComputeSeconds">The slowest shard's compute, summed over calls.</param>
/// <param name="SerializeSeconds">The driver's (de)serialisation.</param>
/// <param name="TransferSeconds">The rest: messaging, transfer, waiting.</param>
internal sealed record ClusterOutput(int Shards, int Workers, IReadOnlyList<string> ShardSilos, int Retries, IReadOnlyList<string> RetryLog, int Calls, double WallSeconds, double ComputeSeconds, double SerializeSeconds, double TransferSeconds)
{
    /// <summary>The line the tables print: shards, workers, calls, retries, and where the time went.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Shards} shards on {Workers} workers, {Calls} calls, {Retries} retried; {WallSeconds:0.000} s = compute {ComputeSeconds:0.000} + serialisation {SerializeSeconds:0.000} + transfer {TransferSeconds:0.000}");
}

/// <summary>
/// A command result that carries the cluster's part of the output (<see cref="ClusterOutput"/>): the execution path adds it
/// once the work is done, for every command that ran with <c>--cluster</c>.
/// </summary>
/// <typeparam name="T">The result record itself.</typeparam>
internal interface IClusterReported<out T>
{
    /// <summary>The result with <paramref name="cluster"/> as its <c>cluster</c> field.</summary>
    T WithCluster(ClusterOutput cluster);
}

/// <summary>
/// The base of a command result that ran on the cluster's workers with <c>--cluster</c>: its <c>cluster</c> field
/// (<see cref="IClusterReported{T}"/>), written last and only with <c>--cluster</c>.
/// </summary>
/// <typeparam name="T">The result record itself.</typeparam>
internal abstract record ClusterReported<T> : IClusterReported<T>
    where T : ClusterReported<T>
{
    /// <summary>With <c>--cluster</c>: the shards, workers, retries and where the time went; else null (not written).</summary>
    public ClusterOutput? Cluster { get; init; }

    /// <inheritdoc/>
    public T WithCluster(ClusterOutput cluster) => (T)(this with { Cluster = cluster });
}
