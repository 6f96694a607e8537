using LossLandscape.Engine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LossLandscape.Cluster;

/// <summary>
/// The file a cluster is named by (<c>landscape cluster init</c> writes it; <c>landscape worker --cluster</c> and every
/// <c>--cluster</c> command read it): the membership, the workers' ports, the number of shards and the timeouts.
/// </summary>
/// <remarks>
/// <para>Membership <c>localhost</c> is Orleans' development clustering: every silo on this machine, worker 0 the primary silo
/// that seeds the membership (Orleans docs, "Local development configuration"). Membership <c>redis</c> is Orleans' Redis
/// clustering provider (<c>Microsoft.Orleans.Clustering.Redis</c>): the workers, on any hosts, register in the Redis server
/// <see cref="Redis"/> names, and the driver finds the live ones there; the ports of <see cref="Workers"/> are then each
/// worker's default, and its address is its own (<c>landscape worker --advertise</c>). Any other name is refused with the
/// list of what is supported.</para>
/// <para>With <see cref="Tls"/> every connection, silo to silo and driver to gateway, is mutual TLS with certificates signed
/// by the cluster's own authority (<see cref="ClusterCertificates"/>), and no worker listens anywhere but on a loopback
/// address without it.</para>
/// </remarks>
/// <param name="Format">Always <see cref="FormatName"/>.</param>
/// <param name="ClusterId">Orleans' cluster id: silos and clients with the same id form one cluster.</param>
/// <param name="ServiceId">Orleans' service id.</param>
/// <param name="Membership">How silos find each other: <c>localhost</c> or <c>redis</c>.</param>
/// <param name="Host">The address every worker listens on (for <c>localhost</c>, 127.0.0.1); empty for <c>redis</c>, where each worker has its own.</param>
/// <param name="Workers">The workers' silo and gateway ports, worker i at index i.</param>
/// <param name="Shards">How many shards the data is split into (≥ 1, at most the number of rows).</param>
/// <param name="CallTimeoutSeconds">How long one shard call may take before it is retried; longer than the slowest shard call.</param>
/// <param name="RetryWindowSeconds">How long the driver keeps retrying a shard (waiting for its worker to return) before it fails the run.</param>
/// <param name="ChunkBytes">The largest payload of one message; longer vectors travel in chunks of this size.</param>
/// <param name="MaxMessageBytes">Orleans' <c>MaxMessageBodySize</c>, set alike on silos and client; must exceed <see cref="ChunkBytes"/> plus <see cref="MessageOverheadBytes"/>.</param>
public sealed record ClusterConfig(
    string Format,
    string ClusterId,
    string ServiceId,
    string Membership,
    string Host,
    IReadOnlyList<WorkerEndpoint> Workers,
    int Shards,
    double CallTimeoutSeconds,
    double RetryWindowSeconds,
    int ChunkBytes,
    int MaxMessageBytes)
{
    /// <summary>The format tag of the file.</summary>
    public const string FormatName = "losslandscape.cluster/1";

    /// <summary>Orleans' development (localhost) clustering: every worker on this machine.</summary>
    public const string LocalhostMembership = "localhost";

    /// <summary>Orleans' Redis clustering: workers on any hosts, registered in one Redis server.</summary>
    public const string RedisMembership = "redis";

    /// <summary>The memberships built in.</summary>
    public static IReadOnlyList<string> Memberships { get; } = [LocalhostMembership, RedisMembership];

    /// <summary>For <c>redis</c> membership, the Redis server as <c>HOST:PORT</c>; else null.</summary>
    public string? Redis { get; init; }

    /// <summary>Whether silos and driver use mutual TLS with the certificates written beside the cluster file (<see cref="ClusterCertificates"/>).</summary>
    public bool Tls { get; init; }

    /// <summary>Default first silo port: Orleans' own default silo port (11111); worker i takes BasePort + 2i and + 2i + 1.</summary>
    public const int DefaultBasePort = 11111;

    /// <summary>
    /// Default shard-call timeout, 300 s: an HVP over 5 000 samples at n = 10⁶ took ~6 s here (issue 12 §2); fifty times that
    /// leaves room for a block of k vectors and a shared machine. Orleans' own 30 s ResponseTimeout is too short for that.
    /// </summary>
    public const double DefaultCallTimeoutSeconds = 300;

    /// <summary>Default retry window, 120 s: long enough for a worker to be restarted by hand or by a supervisor.</summary>
    public const double DefaultRetryWindowSeconds = 120;

    /// <summary>Default chunk, 16 MiB: 2 M doubles, a sixth of Orleans' default 100 MiB message body.</summary>
    public const int DefaultChunkBytes = 16 << 20;

    /// <summary>Orleans' default <c>MaxMessageBodySize</c>, 100 MiB (issue 12 §2).</summary>
    public const int DefaultMaxMessageBytes = 100 << 20;

    /// <summary>Room left in a message for headers and the fields beside a chunk: 64 KiB, far above what they take.</summary>
    public const int MessageOverheadBytes = 64 << 10;

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    /// <summary>A one-machine cluster of <paramref name="workers"/> workers on 127.0.0.1, ports from <paramref name="basePort"/>, one shard per worker.</summary>
    /// <exception cref="LandscapeInputException">Fewer than one worker, or ports outside 1 … 65535.</exception>
    public static ClusterConfig Localhost(int workers, int basePort = DefaultBasePort, int? shards = null)
    {
        if (workers < 1)
        {
            throw new LandscapeInputException($"--workers: {workers} is not a positive number of workers");
        }
        if (basePort < 1 || (long)basePort + 2L * workers - 1 > 65535)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture, $"--base-port: ports {basePort} … {(long)basePort + 2L * workers - 1} are not all in 1 … 65535"));
        }
        var endpoints = Enumerable.Range(0, workers).Select(i => new WorkerEndpoint(basePort + 2 * i, basePort + 2 * i + 1)).ToArray();
        var config = new ClusterConfig(FormatName, "landscape", "landscape", LocalhostMembership, "127.0.0.1", endpoints, shards ?? workers,
            DefaultCallTimeoutSeconds, DefaultRetryWindowSeconds, DefaultChunkBytes, DefaultMaxMessageBytes);
        config.Validate("cluster init");
        return config;
    }

    /// <summary>
    /// A cluster of <paramref name="workers"/> workers on any hosts, whose membership is the Redis server
    /// <paramref name="redis"/> (<c>HOST:PORT</c>); worker i listens by default on ports <paramref name="basePort"/> + 2i and + 2i + 1
    /// of its own address, one shard per worker unless <paramref name="shards"/> says otherwise.
    /// </summary>
    /// <exception cref="LandscapeInputException">Fewer than one worker, ports outside 1 … 65535, or <paramref name="redis"/> not <c>HOST:PORT</c>.</exception>
    public static ClusterConfig WithRedis(string redis, int workers, int basePort = DefaultBasePort, int? shards = null, bool tls = false)
    {
        ArgumentNullException.ThrowIfNull(redis);
        _ = RedisEndpoint(redis, "--redis");
        var config = Localhost(workers, basePort, shards) with { Membership = RedisMembership, Host = "", Redis = redis, Tls = tls };
        config.Validate("cluster init");
        return config;
    }

    /// <summary>Splits <c>HOST:PORT</c> (an IPv6 host in brackets, <c>[::1]:6379</c>).</summary>
    /// <exception cref="LandscapeInputException">No host, or a port outside 1 … 65535; the line names <paramref name="what"/>.</exception>
    public static (string Host, int Port) RedisEndpoint(string value, string what)
    {
        ArgumentNullException.ThrowIfNull(value);
        int colon = value.LastIndexOf(':');
        string host = colon > 0 ? value[..colon].Trim('[', ']') : "";
        if (host.Length == 0 || !int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new LandscapeInputException($"{what}: '{value}' is not HOST:PORT of a Redis server (e.g. 10.0.0.5:6379)");
        }
        return (host, port);
    }

    /// <summary>The configuration as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads and checks a configuration file.</summary>
    /// <exception cref="LandscapeInputException">The file is missing, not JSON of this format, or inconsistent (see <see cref="Validate"/>).</exception>
    public static ClusterConfig Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            throw new LandscapeInputException($"--cluster: no such file {path}");
        }
        ClusterConfig? config;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path), JsonInput.Strict); // a repeated key is refused, naming it
            config = document.Deserialize<ClusterConfig>(JsonOptions);
        }
        catch (JsonException e)
        {
            throw new LandscapeInputException($"--cluster: {path} is not a cluster file ({JsonInput.Reason(e)})");
        }
        if (config is null)
        {
            throw new LandscapeInputException($"--cluster: {path} is empty");
        }
        config.Validate(path);
        return config;
    }

    /// <summary>
    /// Checks the format tag, the membership, the workers' ports, the shard count and the sizes:
    /// <c>ChunkBytes + MessageOverheadBytes ≤ MaxMessageBytes</c>, so that no chunk can be refused as oversized.
    /// </summary>
    /// <exception cref="LandscapeInputException">One line naming <paramref name="source"/> and the first inconsistency.</exception>
    public void Validate(string source)
    {
        string Bad(string what) => $"--cluster: {source}: {what}";
        if (Format != FormatName)
        {
            throw new LandscapeInputException(Bad($"format is '{Format}', expected '{FormatName}'"));
        }
        if (!Memberships.Contains(Membership, StringComparer.Ordinal))
        {
            throw new LandscapeInputException(Bad($"membership '{Membership}' is not supported; supported: {string.Join(", ", Memberships)}"));
        }
        if (Workers is null || Workers.Count == 0)
        {
            throw new LandscapeInputException(Bad("no workers"));
        }
        if (string.IsNullOrWhiteSpace(ClusterId) || string.IsNullOrWhiteSpace(ServiceId))
        {
            throw new LandscapeInputException(Bad("clusterId and serviceId must be given"));
        }
        if (IsRedis)
        {
            _ = RedisEndpoint(Redis ?? "", Bad("redis"));
        }
        else if (string.IsNullOrWhiteSpace(Host))
        {
            throw new LandscapeInputException(Bad("host must be given for localhost membership"));
        }
        else if (Tls)
        {
            throw new LandscapeInputException(Bad("tls needs redis membership (localhost membership keeps every worker on this machine's loopback address)"));
        }
        var ports = Workers.SelectMany(w => new[] { w.SiloPort, w.GatewayPort }).ToArray();
        if (ports.Any(p => p is < 1 or > 65535) || ports.Distinct().Count() != ports.Length)
        {
            throw new LandscapeInputException(Bad("the workers' ports must be distinct and in 1 … 65535"));
        }
        if (Shards < 1)
        {
            throw new LandscapeInputException(Bad(string.Create(CultureInfo.InvariantCulture, $"shards = {Shards} is not positive")));
        }
        if (!(CallTimeoutSeconds > 0) || !(RetryWindowSeconds >= 0) || double.IsInfinity(CallTimeoutSeconds) || double.IsInfinity(RetryWindowSeconds))
        {
            throw new LandscapeInputException(Bad("callTimeoutSeconds must be positive and retryWindowSeconds non-negative, both finite"));
        }
        if (ChunkBytes < sizeof(double) || (long)ChunkBytes + MessageOverheadBytes > MaxMessageBytes)
        {
            throw new LandscapeInputException(Bad(string.Create(CultureInfo.InvariantCulture,
                $"chunkBytes = {ChunkBytes} must be at least 8 and at most maxMessageBytes − {MessageOverheadBytes} = {(long)MaxMessageBytes - MessageOverheadBytes}")));
        }
    }

    /// <summary>Whether the membership is <c>redis</c>.</summary>
    [JsonIgnore]
    public bool IsRedis => string.Equals(Membership, RedisMembership, StringComparison.Ordinal);

    /// <summary>The timeout of one shard call.</summary>
    [JsonIgnore]
    public TimeSpan CallTimeout => TimeSpan.FromSeconds(CallTimeoutSeconds);

    /// <summary>How long a shard is retried before the run fails.</summary>
    [JsonIgnore]
    public TimeSpan RetryWindow => TimeSpan.FromSeconds(RetryWindowSeconds);
}

/// <summary>One worker's ports.</summary>
/// <param name="SiloPort">The silo-to-silo port.</param>
/// <param name="GatewayPort">The port clients (the driver) connect to.</param>
public sealed record WorkerEndpoint(int SiloPort, int GatewayPort);
