using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace LossLandscape.Cluster;

/// <summary>Starts a worker silo and connects a driver to the cluster a <see cref="ClusterConfig"/> names.</summary>
public static class ClusterHosting
{
    /// <summary>
    /// How long the driver waits for a gateway when it connects: 15 s, several of Orleans' gateway-list refreshes; a
    /// cluster that does not answer by then is reported as unreachable.
    /// </summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Configures <paramref name="silo"/> as worker <paramref name="index"/> of <paramref name="config"/>.</summary>
    /// <param name="silo">The silo.</param>
    /// <param name="config">The cluster file.</param>
    /// <param name="index">Which worker of the file.</param>
    /// <param name="computeDelay">A test hook, zero unless set: <see cref="ShardSettings.ComputeDelay"/>.</param>
    /// <param name="loaded">Told one line per shard loaded on this worker (<see cref="ShardSettings.Loaded"/>), or null.</param>
    public static void ConfigureWorker(ISiloBuilder silo, ClusterConfig config, int index, TimeSpan computeDelay = default, Action<string>? loaded = null)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(config);
        var self = config.Workers[index];
        var primary = new IPEndPoint(IPAddress.Parse(config.Host), config.Workers[0].SiloPort);
        silo.UseLocalhostClustering(self.SiloPort, self.GatewayPort, primary, config.ServiceId, config.ClusterId);
        silo.Configure<EndpointOptions>(o => o.AdvertisedIPAddress = IPAddress.Parse(config.Host));
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
    /// <exception cref="LandscapeInputException">The index is not one of the file's workers.</exception>
    public static IHost BuildWorker(ClusterConfig config, int index, TimeSpan computeDelay = default, Action<string>? loaded = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (index < 0 || index >= config.Workers.Count)
        {
            throw new LandscapeInputException($"--index: {index} is not a worker of the cluster file (0 … {config.Workers.Count - 1})");
        }
        return new HostBuilder().UseOrleans(silo => ConfigureWorker(silo, config, index, computeDelay, loaded)).Build();
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
    /// <exception cref="LandscapeInputException">No gateway answered within <see cref="ConnectTimeout"/>.</exception>
    public static async Task<IHost> ConnectAsync(ClusterConfig config, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        var host = new HostBuilder().UseOrleansClient(client =>
        {
            client.UseLocalhostClustering(config.Workers.Select(w => w.GatewayPort).ToArray(), config.ServiceId, config.ClusterId);
            ConfigureMessaging(client.Services, config);
            WatchGateways(client);
        }).Build();
        try
        {
            await host.StartAsync(cancellationToken).WaitAsync(ConnectTimeout, cancellationToken).ConfigureAwait(false);
            await WaitForWorkers(host.Services.GetRequiredService<IClusterClient>(), config.Workers.Count, cancellationToken).ConfigureAwait(false);
            return host;
        }
        catch (Exception e) when (e is TimeoutException or OrleansException or System.Net.Sockets.SocketException)
        {
            host.Dispose();
            throw new LandscapeInputException($"--cluster: no silo reachable at {config.Host} gateway ports {string.Join(",", config.Workers.Select(w => w.GatewayPort))} ({e.GetType().Name}); start the workers with landscape worker --cluster FILE --index I");
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
