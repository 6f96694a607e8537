using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Clustering.Redis;
using Orleans.Configuration;
using Orleans.Runtime;
using StackExchange.Redis;

namespace LossLandscape.Cluster;

/// <summary>Starts a worker silo and connects a driver to the cluster a <see cref="ClusterConfig"/> names.</summary>
public static class ClusterHosting
{
    /// <summary>
    /// How long the driver waits for a gateway when it connects: 15 s, several of Orleans' gateway-list refreshes; a
    /// cluster that does not answer by then is reported as unreachable.
    /// </summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How often the driver rereads the live gateways from a Redis membership: 5 s, so that a worker restarted on another
    /// address is used within seconds (Orleans' default, 1 min, suits clusters whose silos rarely move).
    /// </summary>
    public static readonly TimeSpan GatewayListRefresh = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a process waits for the Redis server when it connects: 5 s (StackExchange.Redis' own default), after which a
    /// worker or driver that cannot reach it stops with one line naming it.
    /// </summary>
    public static readonly TimeSpan RedisConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Where worker <paramref name="index"/> of <paramref name="config"/> listens. For <c>localhost</c> membership the file's
    /// host and ports; for <c>redis</c>, <paramref name="advertise"/> (default: this host's address toward the Redis server, the
    /// one the other hosts reach it by) and <paramref name="port"/> for the silo and <paramref name="port"/> + 1 for the gateway
    /// (default: the file's ports of worker <paramref name="index"/>).
    /// </summary>
    /// <exception cref="LandscapeInputException">
    /// The index is not one of the file's workers; <c>--advertise</c> not an IP address; <c>--advertise</c> or <c>--port</c>
    /// with <c>localhost</c> membership; or an address other than loopback without TLS (anyone who reached it could call the
    /// workers): each in one line. (An address that is not this host's is refused when the silo binds it.)
    /// </exception>
    public static WorkerSite SiteOf(ClusterConfig config, int index, string? advertise = null, int? port = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (index < 0 || index >= config.Workers.Count)
        {
            throw new LandscapeInputException($"--index: {index} is not a worker of the cluster file (0 … {config.Workers.Count - 1})");
        }
        var self = config.Workers[index];
        if (!config.IsRedis)
        {
            if (advertise is not null || port is not null)
            {
                throw new LandscapeInputException("--advertise and --port: a localhost cluster's workers listen on the file's host and ports; a cluster across hosts is cluster init --membership redis");
            }
            return new WorkerSite(IPAddress.Parse(config.Host), self.SiloPort, self.GatewayPort);
        }
        if (port is { } p && (p < 1 || p > 65534))
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"--port: {p} and {(long)p + 1} are not both in 1 … 65535"));
        }
        IPAddress address;
        if (advertise is null)
        {
            address = AddressToward(config);
        }
        else if (!IPAddress.TryParse(advertise, out address!))
        {
            throw new LandscapeInputException($"--advertise: '{advertise}' is not an IP address");
        }
        if (!config.Tls && !IPAddress.IsLoopback(address))
        {
            throw new LandscapeInputException($"worker {index}: will not listen on {address} without TLS (any process that reaches it could call the workers); use a loopback address, or a cluster file written by cluster init --tls");
        }
        return port is { } q ? new WorkerSite(address, q, q + 1) : new WorkerSite(address, self.SiloPort, self.GatewayPort);
    }

    /// <summary>This host's address on the route to the cluster's Redis server (a connected UDP socket's local end; nothing is sent).</summary>
    private static IPAddress AddressToward(ClusterConfig config)
    {
        var (host, port) = ClusterConfig.RedisEndpoint(config.Redis!, "redis");
        try
        {
            var target = IPAddress.TryParse(host, out var literal) ? literal
                : Dns.GetHostAddresses(host).OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).First();
            using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Connect(target, port);
            return ((IPEndPoint)socket.LocalEndPoint!).Address;
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException)
        {
            throw new LandscapeInputException($"the membership store redis at {config.Redis} cannot be reached from this host ({e.Message.ReplaceLineEndings(" ")}); give --advertise ADDRESS");
        }
    }

    /// <summary>StackExchange.Redis' options for the cluster's Redis server: its endpoint, a short connect timeout, and a first connect that fails rather than waits.</summary>
    private static ConfigurationOptions RedisOptions(ClusterConfig config)
    {
        var options = ConfigurationOptions.Parse(config.Redis!);
        options.ConnectTimeout = (int)RedisConnectTimeout.TotalMilliseconds;
        options.AbortOnConnectFail = true;
        return options;
    }

    /// <summary>Configures <paramref name="silo"/> as worker <paramref name="index"/> of <paramref name="config"/>.</summary>
    /// <param name="silo">The silo.</param>
    /// <param name="config">The cluster file.</param>
    /// <param name="index">Which worker of the file.</param>
    /// <param name="computeDelay">A test hook, zero unless set: <see cref="ShardSettings.ComputeDelay"/>.</param>
    /// <param name="loaded">Told one line per shard loaded on this worker (<see cref="ShardSettings.Loaded"/>), or null.</param>
    /// <param name="site">Where it listens (<see cref="SiteOf"/>); default the file's host and ports.</param>
    /// <param name="identity">With <see cref="ClusterConfig.Tls"/>: the worker's certificate and the cluster's authority.</param>
    public static void ConfigureWorker(ISiloBuilder silo, ClusterConfig config, int index, TimeSpan computeDelay = default, Action<string>? loaded = null,
        WorkerSite? site = null, ClusterIdentity? identity = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(config);
        site ??= SiteOf(config, index);
        if (config.IsRedis)
        {
            silo.UseRedisClustering(o => o.ConfigurationOptions = RedisOptions(config));
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = config.ClusterId;
                o.ServiceId = config.ServiceId;
            });
            silo.Configure<EndpointOptions>(o =>
            {
                o.AdvertisedIPAddress = site.Address;
                o.SiloPort = site.SiloPort;
                o.GatewayPort = site.GatewayPort;
                o.SiloListeningEndpoint = new IPEndPoint(site.Address, site.SiloPort);
                o.GatewayListeningEndpoint = new IPEndPoint(site.Address, site.GatewayPort);
            });
        }
        else
        {
            var primary = new IPEndPoint(IPAddress.Parse(config.Host), config.Workers[0].SiloPort);
            silo.UseLocalhostClustering(site.SiloPort, site.GatewayPort, primary, config.ServiceId, config.ClusterId);
            silo.Configure<EndpointOptions>(o => o.AdvertisedIPAddress = site.Address);
        }
        if (config.Tls)
        {
            var own = identity ?? throw new ArgumentException("a TLS cluster's worker needs its certificate", nameof(identity));
            silo.UseTls(o => ClusterCertificates.Configure(o, own));
        }
        silo.Services.AddSingleton(new ShardSettings(config.ChunkBytes, computeDelay, loaded));
        ConfigureMessaging(silo.Services, config);
        ConfigurePlacement(silo.Services);
    }

    /// <summary>Registers <see cref="ShardPlacement"/> on a silo: shard s on the (s mod W)-th live silo.</summary>
    public static void ConfigurePlacement(IServiceCollection services) => services.AddPlacementDirector<ShardPlacement, ShardPlacementDirector>();

    /// <summary>Sets the message limit and the response timeout alike on silo and client, and the shards' chunk size.</summary>
    public static void ConfigureMessaging(IServiceCollection services, ClusterConfig config)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(config);
        services.Configure<SiloMessagingOptions>(o =>
        {
            o.MaxMessageBodySize = config.MaxMessageBytes;
            o.ResponseTimeout = config.CallTimeout;
        });
        services.Configure<ClientMessagingOptions>(o =>
        {
            o.MaxMessageBodySize = config.MaxMessageBytes;
            o.ResponseTimeout = config.CallTimeout;
        });
        services.TryAddSingleton(new ShardSettings(config.ChunkBytes));
    }

    /// <summary>Registers a <see cref="GatewayWatch"/> on a client, told of every change in its number of gateway connections.</summary>
    public static void WatchGateways(IClientBuilder client)
    {
        ArgumentNullException.ThrowIfNull(client);
        client.Services.TryAddSingleton<GatewayWatch>();
        client.AddGatewayCountChangedHandler(services => services.GetRequiredService<GatewayWatch>().OnGatewayCountChanged);
    }

    /// <summary>The host of worker <paramref name="index"/> (not started).</summary>
    /// <param name="config">The cluster file.</param>
    /// <param name="index">Which worker of the file.</param>
    /// <param name="computeDelay">A test hook, zero unless set: <see cref="ShardSettings.ComputeDelay"/>.</param>
    /// <param name="loaded">Told one line per shard loaded on this worker (<see cref="ShardSettings.Loaded"/>), or null.</param>
    /// <param name="site">Where it listens (<see cref="SiteOf"/>); default the file's host and ports.</param>
    /// <param name="identity">With <see cref="ClusterConfig.Tls"/>: the worker's certificate and the cluster's authority.</param>
    /// <param name="configure">More configuration of the silo (a test's grain-call filter), or null.</param>
    /// <exception cref="LandscapeInputException">The index is not one of the file's workers.</exception>
    public static IHost BuildWorker(ClusterConfig config, int index, TimeSpan computeDelay = default, Action<string>? loaded = null,
        WorkerSite? site = null, ClusterIdentity? identity = null, Action<ISiloBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        site ??= SiteOf(config, index);
        return new HostBuilder().UseOrleans(silo =>
        {
            ConfigureWorker(silo, config, index, computeDelay, loaded, site, identity);
            // Orleans' own handler ends the process with a stack trace (FailFast); this one stops the host and keeps the reason.
            silo.Services.AddSingleton<WorkerStop>();
            silo.Services.AddSingleton<IFatalErrorHandler>(services => services.GetRequiredService<WorkerStop>());
            silo.Services.Configure<HostOptions>(o => o.ShutdownTimeout = WorkerStopTimeout);
            configure?.Invoke(silo);
        }).Build();
    }

    /// <summary>How long a stopping worker waits for its silo to leave the cluster: 10 s; a worker the cluster declared dead has no one to say goodbye to.</summary>
    public static readonly TimeSpan WorkerStopTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Why the cluster stopped the worker <paramref name="host"/> (<see cref="BuildWorker"/>), in one line: declared dead by the
    /// other workers (it could not reach them, or they refused its certificate), or another fatal error of the silo; null
    /// when it was stopped from outside (Ctrl-C, SIGTERM).
    /// </summary>
    public static string? StoppedBecause(IHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return host.Services.GetService<WorkerStop>()?.Reason;
    }

    /// <summary>
    /// The one line for a worker or driver whose start failed on the membership store: the Redis server named, or null when
    /// <paramref name="e"/> is not about it.
    /// </summary>
    public static string? MembershipStoreFailure(ClusterConfig config, Exception e)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(e);
        if (!config.IsRedis)
        {
            return null;
        }
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is RedisException or RedisClusteringException)
            {
                return $"the membership store redis at {config.Redis} cannot be reached ({inner.GetType().Name}: {FirstLine(inner.Message)})";
            }
        }
        return null;
    }

    private static string FirstLine(string message)
    {
        var line = message.ReplaceLineEndings("\n").Split("\n")[0];
        const int longest = 200; // one screen line or two
        return line.Length <= longest ? line : line[..longest] + "…";
    }

    /// <summary>How long a client is given to leave the cluster: 5 s; a client whose gateways are dead is disposed anyway.</summary>
    public static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Pause between looks at the membership while workers join: 200 ms.</summary>
    private static readonly TimeSpan MembershipPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Waits (at most <see cref="ConnectTimeout"/>) until <paramref name="workers"/> silos are active, so that the first
    /// shards are placed over all of them rather than over the ones that happened to have joined; fewer is not an error.
    /// </summary>
    private static async Task WaitForWorkers(IClusterClient client, int workers, CancellationToken cancellationToken)
    {
        var management = client.GetGrain<IManagementGrain>(0);
        var deadline = DateTime.UtcNow + ConnectTimeout;
        while ((await management.GetHosts(onlyActive: true).ConfigureAwait(false)).Count < workers && DateTime.UtcNow < deadline)
        {
            await Task.Delay(MembershipPoll, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Connects a client to the cluster's gateways and waits for its workers to be active. The client tells its sessions when
    /// it loses a gateway connection (<see cref="GatewayWatch"/>), so that their calls in flight are retried at once.
    /// </summary>
    /// <param name="config">The cluster file.</param>
    /// <param name="cancellationToken">Stops the wait.</param>
    /// <param name="identity">With <see cref="ClusterConfig.Tls"/>: the driver's certificate and the cluster's authority.</param>
    /// <exception cref="LandscapeInputException">
    /// No gateway answered within <see cref="ConnectTimeout"/>, or the membership store cannot be reached: one line naming the
    /// gateways or the store.
    /// </exception>
    public static async Task<IHost> ConnectAsync(ClusterConfig config, CancellationToken cancellationToken = default, ClusterIdentity? identity = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Tls && identity is null)
        {
            throw new ArgumentException("a TLS cluster's driver needs its certificate", nameof(identity));
        }
        var host = new HostBuilder().UseOrleansClient(client =>
        {
            if (config.IsRedis)
            {
                client.UseRedisClustering(o => o.ConfigurationOptions = RedisOptions(config));
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = config.ClusterId;
                    o.ServiceId = config.ServiceId;
                });
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = GatewayListRefresh);
            }
            else
            {
                client.UseLocalhostClustering(config.Workers.Select(w => w.GatewayPort).ToArray(), config.ServiceId, config.ClusterId);
            }
            if (identity is not null)
            {
                client.UseTls(o => ClusterCertificates.Configure(o, identity));
            }
            ConfigureMessaging(client.Services, config);
            WatchGateways(client);
        }).Build();
        try
        {
            await host.StartAsync(cancellationToken).WaitAsync(ConnectTimeout, cancellationToken).ConfigureAwait(false);
            await WaitForWorkers(host.Services.GetRequiredService<IClusterClient>(), config.Workers.Count, cancellationToken).ConfigureAwait(false);
            return host;
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or SocketException or RedisException or RedisClusteringException)
        {
            host.Dispose();
            if (MembershipStoreFailure(config, e) is { } store)
            {
                throw new LandscapeInputException($"--cluster: {store}");
            }
            string where = config.IsRedis
                ? $"no live worker registered in the membership store redis at {config.Redis}{(config.Tls ? " accepted this driver's certificate" : "")}"
                : $"no silo reachable at {config.Host} gateway ports {string.Join(",", config.Workers.Select(w => w.GatewayPort))}";
            throw new LandscapeInputException($"--cluster: {where} within {ConnectTimeout.TotalSeconds:0} s ({e.GetType().Name}); start the workers with landscape worker --cluster FILE --index I");
        }
    }
}

/// <summary>
/// A driver's gateway connections: <see cref="Lost"/> is cancelled (and replaced) each time the client loses one. A call
/// whose request or reply travelled through that gateway is lost with it, whichever silo hosts the shard, and Orleans' client
/// would wait for it until the call's response timeout: a <see cref="ClusterSession"/> gives such calls up and retries them.
/// </summary>
public sealed class GatewayWatch
{
    private CancellationTokenSource _lost = new();
    private int _losses;

    /// <summary>Cancelled when a gateway connection closes; a fresh token after that.</summary>
    public CancellationToken Lost => Volatile.Read(ref _lost).Token;

    /// <summary>Gateway connections lost so far.</summary>
    public int Losses => Volatile.Read(ref _losses);

    /// <summary>Orleans' <see cref="GatewayCountChangedHandler"/>: a fall in the count cancels <see cref="Lost"/>.</summary>
    public void OnGatewayCountChanged(object? sender, GatewayCountChangedEventArgs e)
    {
        ArgumentNullException.ThrowIfNull(e);
        if (e.NumberOfConnectedGateways < e.PreviousNumberOfConnectedGateways)
        {
            Interlocked.Increment(ref _losses);
            // The old source is not disposed: calls in flight may still hold tokens linked to it.
            Interlocked.Exchange(ref _lost, new CancellationTokenSource()).Cancel();
        }
    }
}

/// <summary>Where a worker listens: the address it binds and advertises in the membership, and its silo and gateway ports.</summary>
/// <param name="Address">The address other workers and the driver reach it at.</param>
/// <param name="SiloPort">The silo-to-silo port.</param>
/// <param name="GatewayPort">The port the driver connects to.</param>
public sealed record WorkerSite(IPAddress Address, int SiloPort, int GatewayPort);

/// <summary>
/// A worker's <see cref="IFatalErrorHandler"/>: where Orleans would end the process with a stack trace (a silo the
/// membership declared dead, a fatal error of the runtime), it keeps the reason in one line and stops the host, so that
/// <c>landscape worker</c> exits 2 with that line.
/// </summary>
internal sealed class WorkerStop(IHostApplicationLifetime lifetime) : IFatalErrorHandler
{
    private string? _reason;

    /// <summary>The first fatal error, one line; null while there was none.</summary>
    public string? Reason => Volatile.Read(ref _reason);

    /// <inheritdoc />
    public bool IsUnexpected(Exception exception) => true;

    /// <inheritdoc />
    public void OnFatalException(object? sender = null, string? context = null, Exception? exception = null)
    {
        string what = (context ?? exception?.Message ?? "a fatal error of the silo").ReplaceLineEndings(" ");
        int membership = what.IndexOf(" Membership: [", StringComparison.Ordinal);
        if (membership > 0)
        {
            what = what[..membership]; // the whole membership view follows: one line keeps the reason only
        }
        Interlocked.CompareExchange(ref _reason, what.Trim(), null);
        lifetime.StopApplication();
    }
}
