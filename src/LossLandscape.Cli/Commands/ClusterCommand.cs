using System.CommandLine;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using LossLandscape.Cluster;
using LossLandscape.Engine;
using Microsoft.Extensions.Hosting;

namespace LossLandscape.Cli.Commands;

/// <summary><c>landscape cluster init --workers N [--base-port P] [--shards S] --out FILE</c>: writes a one-machine cluster file.</summary>
internal sealed class ClusterInitCommand : LandscapeCommand<ClusterInitCommand.Settings, ClusterConfig>
{
    private readonly Option<int> _workers = new("--workers") { Description = "how many worker processes (silos) on this machine", Required = true };
    private readonly Option<int> _basePort = new("--base-port") { Description = "worker i listens on P + 2i (silo) and P + 2i + 1 (gateway)", DefaultValueFactory = _ => ClusterConfig.DefaultBasePort };
    private readonly Option<int?> _shards = new("--shards") { Description = "how many shards the data is split into (default: one per worker)" };
    private readonly Option<string> _out = new("--out") { Description = "the cluster file to write", Required = true };

    private ClusterInitCommand()
        : base("init", "Write a cluster file for N workers on this machine (Orleans localhost clustering).", SharedOptions.None)
        => Add(_workers, _basePort, _shards, _out);

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

        /// <summary><c>--out FILE</c>.</summary>
        public string Out { get; init; } = "";
    }

    /// <inheritdoc />
    protected override Settings Bind(ParseResult result) => new()
    {
        Workers = result.GetValue(_workers),
        BasePort = result.GetValue(_basePort),
        Shards = result.GetValue(_shards),
        Out = result.GetValue(_out)!,
    };

    /// <inheritdoc />
    public override void Validate(Settings settings) => _ = ClusterConfig.Localhost(settings.Workers, settings.BasePort, settings.Shards);

    /// <inheritdoc />
    protected override ClusterConfig Execute(CommandRun run, Settings settings)
    {
        var config = ClusterConfig.Localhost(settings.Workers, settings.BasePort, settings.Shards);
        AtomicFile.WriteAllText(settings.Out, config.ToJson() + Environment.NewLine);
        return config;
    }

    /// <inheritdoc />
    protected override void Render(CliContext context, Settings settings, ClusterConfig result)
    {
        context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {settings.Out}: {result.Workers.Count} workers on {result.Host}, {result.Shards} shards; start each with"));
        for (int i = 0; i < result.Workers.Count; i++)
        {
            context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  landscape worker --cluster {settings.Out} --index {i}"));
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
    private readonly Option<int> _index = new("--index") { Description = "which worker of the file this is (0 … workers − 1; worker 0 seeds the membership)", Required = true };

    private WorkerCommand()
        : base("worker", "Run one worker of a cluster: an Orleans silo whose shard workers read their rows of the data and answer the --cluster commands' sums.", SharedOptions.None)
        => Add(_cluster, _index);

    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context) => new WorkerCommand().Build(context);

    /// <summary>The settings of <c>worker</c>.</summary>
    internal sealed record Settings : LandscapeSettings
    {
        /// <summary><c>--index I</c>.</summary>
        public int Index { get; init; }
    }

    /// <summary>How long the worker ran.</summary>
    /// <param name="Seconds">Wall seconds.</param>
    internal sealed record Stopped(double Seconds);

    /// <inheritdoc />
    protected override Settings Bind(ParseResult result) => new() { Cluster = result.GetValue(_cluster)!, Index = result.GetValue(_index) };

    /// <inheritdoc />
    protected override Stopped Execute(CommandRun run, Settings settings)
    {
        var config = ClusterConfig.Load(settings.Cluster!);
        var err = run.Context.Err;
        using var host = ClusterHosting.BuildWorker(config, settings.Index, ComputeDelay(), line =>
        {
            lock (err)
            {
                err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"landscape worker {settings.Index}: {line}"));
                err.Flush();
            }
        });
        var self = config.Workers[settings.Index];
        try
        {
            host.Start();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or OrleansException)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"worker {settings.Index}: could not start on {config.Host}:{self.SiloPort}/{self.GatewayPort} ({e.Message.ReplaceLineEndings(" ")})"));
        }
        run.Context.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"landscape worker {settings.Index}: silo {config.Host}:{self.SiloPort}, gateway {self.GatewayPort}, cluster '{config.ClusterId}'; ready (Ctrl-C stops)"));
        run.Context.Err.Flush();
        host.WaitForShutdown();
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
