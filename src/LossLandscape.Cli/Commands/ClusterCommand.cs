using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Cluster;
using LossLandscape.Engine;
using Microsoft.Extensions.Hosting;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape cluster init [--membership localhost|redis] [--redis HOST:PORT] [--tls] --workers N [--base-port P] [--shards S] --out FILE</c>:
/// writes a cluster file (and with <c>--tls</c> the cluster's certificates beside it).
/// </summary>
internal sealed class ClusterInitCommand : LandscapeCommand<ClusterInitCommand.Settings, ClusterConfig>
{
    private readonly Option<int> _workers = new("--workers") { Description = "how many worker processes (silos)", Required = true };
    private readonly Option<int> _basePort = new("--base-port") { Description = "worker i listens on P + 2i (silo) and P + 2i + 1 (gateway)", DefaultValueFactory = _ => ClusterConfig.DefaultBasePort };
    private readonly Option<int?> _shards = new("--shards") { Description = "how many shards the data is split into (default: one per worker)" };
    private readonly Option<string> _membership = new("--membership")
    {
        Description = "how the workers find each other: localhost (every worker on this machine) or redis (workers on any hosts, registered in the Redis server --redis)",
        DefaultValueFactory = _ => ClusterConfig.LocalhostMembership,
    };
    private readonly Option<string?> _redis = new("--redis") { Description = "the Redis server of --membership redis, HOST:PORT" };
    private readonly Option<bool> _tls = new("--tls") { Description = "mutual TLS: write a cluster authority and a certificate per worker and for the driver beside the cluster file (--membership redis)" };
    private readonly Option<string> _out = new("--out") { Description = "the cluster file to write", Required = true };

    private ClusterInitCommand()
        : base("init", "Write a cluster file for N workers: on this machine (localhost membership), or on any hosts through a Redis server (redis membership, with --tls for mutual TLS).", SharedOptions.None)
        => Add(_workers, _basePort, _shards, _membership, _redis, _tls, _out);

    /// <summary>Builds <c>landscape cluster</c> with its one subcommand, <c>init</c>.</summary>
    public static Command Create(CliContext context)
    {
        var cluster = new Command("cluster", "Set up a cluster of workers for --cluster (see landscape worker).");
        cluster.Subcommands.Add(new ClusterInitCommand().Build(context));
        return cluster;
    }

    /// <summary>The settings of <c>cluster init</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--workers N</c>.</summary>
        public int Workers { get; init; }

        /// <summary><c>--base-port P</c>.</summary>
        public int BasePort { get; init; }

        /// <summary><c>--shards S</c>, or null for one per worker.</summary>
        public int? Shards { get; init; }

        /// <summary><c>--membership</c>: localhost or redis.</summary>
        public string Membership { get; init; } = ClusterConfig.LocalhostMembership;

        /// <summary><c>--redis HOST:PORT</c>, or null.</summary>
        public string? Redis { get; init; }

        /// <summary><c>--tls</c>.</summary>
        public bool Tls { get; init; }

        /// <summary><c>--out FILE</c>.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc />
    protected override Settings Bind(ParseResult result) => new()
    {
        Workers = result.GetValue(_workers),
        BasePort = result.GetValue(_basePort),
        Shards = result.GetValue(_shards),
        Membership = result.GetValue(_membership)!,
        Redis = result.GetValue(_redis),
        Tls = result.GetValue(_tls),
        Out = result.GetValue(_out)!,
    };

    /// <inheritdoc />
    public override void Validate(Settings settings) => _ = Config(settings);

    /// <summary>The one place the options become a configuration: each inconsistency is one line naming its option.</summary>
    private static ClusterConfig Config(Settings settings)
    {
        switch (settings.Membership)
        {
            case ClusterConfig.LocalhostMembership:
                if (settings.Redis is not null)
                {
                    throw new LandscapeInputException("--redis: only with --membership redis");
                }
                if (settings.Tls)
                {
                    throw new LandscapeInputException("--tls: only with --membership redis (a localhost cluster stays on this machine's loopback address)");
                }
                return ClusterConfig.Localhost(settings.Workers, settings.BasePort, settings.Shards);
            case ClusterConfig.RedisMembership:
                return ClusterConfig.WithRedis(settings.Redis ?? throw new LandscapeInputException("--redis HOST:PORT is required with --membership redis"),
                    settings.Workers, settings.BasePort, settings.Shards, settings.Tls);
            default:
                throw new LandscapeInputException($"--membership: '{settings.Membership}' is not one of {string.Join(", ", ClusterConfig.Memberships)}");
        }
    }

    /// <inheritdoc />
    protected override ClusterConfig Execute(CommandRun run, Settings settings)
    {
        var config = Config(settings);
        if (config.Tls)
        {
            ClusterCertificates.Write(settings.Out, config.Workers.Count, config.ClusterId);
        }
        AtomicFile.WriteAllText(settings.Out, config.ToJson() + Environment.NewLine);
        return config;
    }

    /// <inheritdoc />
    protected override void Render(CliContext context, Settings settings, ClusterConfig result)
    {
        string where = result.IsRedis ? $"registered in redis at {result.Redis}{(result.Tls ? ", mutual TLS" : "")}" : $"on {result.Host}";
        context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {settings.Out}: {result.Workers.Count} workers {where}, {result.Shards} shards; start each with"));
        for (int i = 0; i < result.Workers.Count; i++)
        {
            string advertise = result.IsRedis ? " [--advertise ADDRESS]" : "";
            context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  landscape worker --cluster {settings.Out} --index {i}{advertise}"));
        }
        if (result.Tls)
        {
            context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"certificates beside it: {Path.GetFileName(ClusterCertificates.AuthorityPath(settings.Out))} (the authority), {Path.GetFileName(ClusterCertificates.WorkerPaths(settings.Out, 0).Certificate).Replace("-0.", "-I.", StringComparison.Ordinal)} and .key for each worker I, {Path.GetFileName(ClusterCertificates.DriverPaths(settings.Out).Certificate)} and .key; copy to each host the cluster file, the authority, and that host's own certificate and key"));
        }
    }
}

/// <summary>
/// <c>landscape worker --cluster FILE --index I</c>: runs worker I of the cluster file, an Orleans silo hosting shard
/// workers, until Ctrl-C or SIGTERM.
/// </summary>
internal sealed class WorkerCommand : LandscapeCommand<WorkerCommand.Settings, WorkerCommand.Stopped>
{
    private readonly Option<string> _cluster = new("--cluster") { Description = "the cluster file (landscape cluster init)", Required = true };
    private readonly Option<int> _index = new("--index") { Description = "which worker of the file this is (0 … workers − 1; with localhost membership worker 0 seeds the membership)", Required = true };
    private readonly Option<string?> _advertise = new("--advertise") { Description = "redis membership: the address this worker listens on and registers (default: this host's address toward the Redis server); not loopback needs a --tls cluster" };
    private readonly Option<int?> _port = new("--port") { Description = "redis membership: the silo port P, the gateway P + 1 (default: the file's ports of worker I)" };

    private WorkerCommand()
        : base("worker", "Run one worker of a cluster: an Orleans silo whose shard workers read their rows of the data and answer the --cluster commands' sums.", SharedOptions.None)
        => Add(_cluster, _index, _advertise, _port);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new WorkerCommand().Build(context);

    /// <summary>The settings of <c>worker</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--index I</c>.</summary>
        public int Index { get; init; }

        /// <summary><c>--advertise ADDRESS</c>, or null.</summary>
        public string? Advertise { get; init; }

        /// <summary><c>--port P</c>, or null.</summary>
        public int? Port { get; init; }
    }

    /// <summary>How long the worker ran.</summary>
    /// <param name="Seconds">Wall seconds.</param>
    internal sealed record Stopped(double Seconds);

    /// <inheritdoc />
    protected override Settings Bind(ParseResult result) => new()
    {
        Cluster = result.GetValue(_cluster)!, Index = result.GetValue(_index), Advertise = result.GetValue(_advertise), Port = result.GetValue(_port),
    };

    /// <inheritdoc />
    protected override Stopped Execute(CommandRun run, Settings settings)
    {
        var config = ClusterConfig.Load(settings.Cluster!);
        var site = ClusterHosting.SiteOf(config, settings.Index, settings.Advertise, settings.Port);
        var identity = config.Tls ? ClusterCertificates.ForWorker(settings.Cluster!, settings.Index) : null;
        var err = run.Context.Err;
        using var host = ClusterHosting.BuildWorker(config, settings.Index, ComputeDelay(), line =>
        {
            lock (err)
            {
                err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"landscape worker {settings.Index}: {line}"));
                err.Flush();
            }
        }, site, identity);
        string hint = config.Tls ? "; a worker whose certificate the cluster's authority did not issue is refused this way" : "";
        try
        {
            host.Start();
        }
        catch (Exception) when (ClusterHosting.StoppedBecause(host) is { } refused)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"worker {settings.Index}: the cluster stopped it while it joined: {refused}{hint}"));
        }
        catch (Exception e) when (ClusterHosting.MembershipStoreFailure(config, e) is { } store)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"worker {settings.Index}: {store}"));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or OrleansException)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"worker {settings.Index}: could not start on {site.Address}:{site.SiloPort}/{site.GatewayPort} ({e.Message.ReplaceLineEndings(" ")})"));
        }
        string membership = config.IsRedis ? $"membership redis at {config.Redis}{(config.Tls ? ", mutual TLS" : "")}" : "membership localhost";
        run.Context.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"landscape worker {settings.Index}: silo {site.Address}:{site.SiloPort}, gateway {site.GatewayPort}, cluster '{config.ClusterId}', {membership}; ready (Ctrl-C stops)"));
        run.Context.Err.Flush();
        host.WaitForShutdown();
        if (ClusterHosting.StoppedBecause(host) is { } reason)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"worker {settings.Index}: the cluster stopped it: {reason}{hint}"));
        }
        return new Stopped(run.Seconds);
    }

    /// <inheritdoc />
    protected override void Render(CliContext context, Settings settings, Stopped result) =>
        context.Err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"landscape worker {settings.Index}: stopped after {result.Seconds:0.0} s"));

    /// <summary>The test hook's variable: milliseconds every shard computation on this worker waits first (a slow shard).</summary>
    public const string ComputeDelayVariable = "LANDSCAPE_WORKER_COMPUTE_DELAY_MS";

    /// <summary>
    /// A test hook, off unless <see cref="ComputeDelayVariable"/> is a positive number of milliseconds: every shard computation
    /// waits that long first (<see cref="ShardSettings.ComputeDelay"/>), so that a test's kill at a random moment of a run lands
    /// in a call in flight, as it would on shards whose products take seconds.
    /// </summary>
    private static TimeSpan ComputeDelay() =>
        int.TryParse(Environment.GetEnvironmentVariable(ComputeDelayVariable), NumberStyles.Integer, CultureInfo.InvariantCulture, out int ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : TimeSpan.Zero;
}
