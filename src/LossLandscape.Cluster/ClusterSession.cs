using System.Diagnostics;
using System.Globalization;
using System.Text;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Cluster;

/// <summary>
/// The driver's side of a sharded problem: which data and model, split into <see cref="ClusterConfig.Shards"/> shards,
/// each answered by one <see cref="IShardGrain"/>. It sends the point, sums or concatenates the shards' answers in shard
/// order, and retries a shard that fails after it is reloaded.
/// </summary>
/// <remarks>
/// Every sum of issue 12 §1 is over samples: L = Σ_s L_s, ∇L = Σ_s ∇L_s, ∇²L V = Σ_s ∇²L_s V, Jᵀw = Σ_s J_sᵀ w_s; H and JV are
/// the shards' blocks stacked. A reply is used only when its point version is the session's (<see cref="Version"/>): a
/// shard that answers for another version gets the point again and is asked again, never summed. A shard call that fails
/// is retried (the shard reloaded where its worker was lost) for at most <see cref="ClusterConfig.RetryWindow"/>; then the run
/// fails with <see cref="ShardUnavailableException"/>. A call in flight to a worker that dies is not waited out to the call
/// timeout: Orleans' client fails such a pending request only at its response timeout (Orleans 10.4.2: a worker killed with
/// SIGKILL mid-call left the call pending until <see cref="ClusterConfig.CallTimeout"/>, issue 19 §2). So while a call is
/// pending the session pings the shard's activation every <see cref="LivenessPeriod"/>, and gives the call up as lost, and
/// retries it at once, when the ping is refused or unanswered, when another activation answers it, or when the client loses a
/// gateway connection (<see cref="GatewayWatch"/>). All of it is decided in one place, <see cref="WithRetry{T}"/>.
/// </remarks>
public sealed class ClusterSession : IResidualProblem, IDisposable
{
    /// <summary>Pause between attempts at a failed shard: 1 s, short beside Orleans' failure detection (several seconds).</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a shard call may be pending before the session pings the shard's activation, and then between pings: 1 s,
    /// so that a worker that dies with a call in flight is noticed within about a second, at the cost of one small message
    /// per second per pending call (none for calls that answer within it).
    /// </summary>
    public static readonly TimeSpan LivenessPeriod = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a ping may go unanswered before the call it watches is given up as lost: 5 s. A live worker answers at once
    /// (the ping interleaves with the call in progress); five seconds leave room for a loaded machine.
    /// </summary>
    public static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Attempts answered with a status (not loaded, another version, a lost payload) before the call is given up: 8, since
    /// each such answer is followed by the fix it asks for, and only a worker that keeps restarting needs more than two.
    /// </summary>
    public const int MaxStatusAttempts = 8;

    private readonly IGrainFactory _grains;
    private readonly Dataset _data;
    private readonly FeedforwardNetwork _network;
    private readonly NetworkModel _replica;
    private readonly ShardLoadRequest[] _loads;
    private readonly bool[] _loaded;
    private readonly long[] _shardVersions;
    private readonly string[] _silos;
    private readonly string?[] _activations;
    private readonly GatewayWatch? _gateways;
    private readonly List<ShardRetry> _retries = [];
    private readonly object _gate = new();
    private double[] _point;
    private long _payloads;

    /// <summary>
    /// A session over <paramref name="data"/> (the driver's copy, which the workers read for themselves from
    /// <paramref name="source"/>) and the network <paramref name="point"/>; nothing is sent until <see cref="Open"/>.
    /// </summary>
    /// <param name="grains">The cluster client (or any grain factory).</param>
    /// <param name="config">Shards, timeouts and chunk size.</param>
    /// <param name="source">How the workers read the data: source, targets, one-hot column, dedupe.</param>
    /// <param name="data">The driver's copy of the data, for the row count and the shards' fingerprints.</param>
    /// <param name="point">The network and its parameters (version 0).</param>
    /// <param name="exponent">The loss exponent a.</param>
    /// <param name="batchSize">Rows per autograd batch within a shard, or null.</param>
    /// <param name="cancellation">The session's <see cref="Cancellation"/>, checked before every round of shard calls; default none.</param>
    /// <param name="loss">The loss (with <paramref name="exponent"/> for squared); a mean loss divides by all the rows d on every shard.</param>
    /// <exception cref="LandscapeInputException">More shards than rows.</exception>
    public ClusterSession(IGrainFactory grains, ClusterConfig config, DataSource source, Dataset data, NetworkPoint point, double exponent = 2.0, int? batchSize = null,
        CancellationToken cancellation = default, LossKind loss = LossKind.Squared)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(point);
        if (point.Network is TorchScriptNetwork)
        {
            throw new LandscapeInputException("--cluster: the workers are sent the model in the project's own formats (losslandscape.mlp/1, dag/1, seq/1); a TorchScript module runs in one process");
        }
        if (config.Shards > data.Count)
        {
            throw new LandscapeInputException($"--cluster: {config.Shards} shards for {data.Count} rows: every shard needs at least one row (lower shards in the cluster file)");
        }
        if (data.InputDim != point.Network.InputDim || data.OutputDim != point.Network.OutputDim)
        {
            throw new LandscapeInputException($"the data has {data.InputDim} inputs and {data.OutputDim} targets per row, the model {point.Network.InputDim} and {point.Network.OutputDim}");
        }
        _grains = grains;
        Config = config;
        _data = data;
        _network = point.Network;
        _point = (double[])point.Parameters.Clone();
        _replica = point.ToModel();
        Id = Guid.NewGuid().ToString("N");
        Ranges = Enumerable.Range(0, config.Shards).Select(s => ShardRanges.Of(s, config.Shards, data.Count)).ToArray();
        _loads = Enumerable.Range(0, config.Shards).Select(s => new ShardLoadRequest
        {
            DataSource = source.Source,
            Targets = source.Targets.ToArray(),
            OneHot = source.OneHot,
            Dedupe = source.Dedupe,
            ShardIndex = s,
            ShardCount = config.Shards,
            TotalRows = data.Count,
            Exponent = exponent,
            Loss = loss,
            BatchSize = batchSize,
            ModelPayload = "",
            RowsFingerprint = VectorBytes.Fingerprint(data.Subset(Enumerable.Range(Ranges[s].First, Ranges[s].Count))),
        }).ToArray();
        LossFunction = new LossFunction(loss, exponent); // what every shard was sent (_loads)
        _loaded = new bool[config.Shards];
        _shardVersions = Enumerable.Repeat(-1L, config.Shards).ToArray();
        _silos = new string[config.Shards];
        _activations = new string?[config.Shards];
        _gateways = (grains as IClusterClient)?.ServiceProvider.GetService(typeof(GatewayWatch)) as GatewayWatch;
        Cancellation = cancellation;
    }

    /// <summary>This session's id: the prefix of its grains' keys.</summary>
    public string Id { get; }

    /// <summary>The cluster configuration.</summary>
    public ClusterConfig Config { get; }

    /// <summary>Shard s's first row and row count.</summary>
    public IReadOnlyList<(int First, int Count)> Ranges { get; }

    /// <summary>The number of parameters n.</summary>
    public int ParameterCount => _network.ParameterCount;

    /// <summary>The number of constraints ℓ·d.</summary>
    public int Constraints => _data.Count * _data.OutputDim;

    /// <inheritdoc/>
    public int Rows => _data.Count;

    /// <inheritdoc/>
    public int Outputs => _data.OutputDim;

    /// <inheritdoc/>
    /// <remarks>The driver's replica of the network, moved with every <see cref="SetPoint"/>; its sums are never taken here.</remarks>
    public IDifferentiableModel Model => _replica;

    /// <inheritdoc/>
    /// <remarks>Checked before every round of shard calls.</remarks>
    public CancellationToken Cancellation { get; }

    /// <summary>The network.</summary>
    public FeedforwardNetwork Network => _network;

    /// <summary>The driver's copy of the data (row count, targets; the workers read their own rows).</summary>
    public IDataSource Data => _data;

    /// <summary>The loss exponent a.</summary>
    public double Exponent => LossFunction.ResidualExponent;

    /// <inheritdoc/>
    public LossFunction LossFunction { get; }

    /// <summary>The current point version (0 at the start; <see cref="SetPoint"/> adds one).</summary>
    public long Version { get; private set; }

    /// <summary>The current point.</summary>
    public IReadOnlyList<double> Point => _point;

    /// <summary>The silo that last loaded shard s (Orleans' runtime identity), for reports.</summary>
    public IReadOnlyList<string> Silos => _silos.ToArray();

    /// <summary>Every retry so far, in order.</summary>
    public IReadOnlyList<ShardRetry> Retries
    {
        get
        {
            lock (_gate)
            {
                return _retries.ToArray();
            }
        }
    }

    /// <summary>Called on each retry as it happens (for a progress line); may be null.</summary>
    public Action<ShardRetry>? OnRetry { get; set; }

    /// <summary>Where the time of the shard calls went.</summary>
    public ClusterTimings Timings { get; } = new();

    /// <summary>
    /// Called after each distributed call (a product or a sum) with the number of such calls so far; may be null. The CLI's
    /// test hook (<c>LANDSCAPE_CLUSTER_PAUSE_AFTER_PRODUCTS</c>) uses it to stop a run at a fixed product, deterministically.
    /// </summary>
    public Action<int>? AfterCall { get; set; }

    private int _calls;

    /// <summary>Loads every shard (each worker reads its rows and builds the model) and checks their answers.</summary>
    /// <exception cref="LandscapeInputException">A worker read other data, or its data does not fit the model.</exception>
    /// <exception cref="ShardUnavailableException">A shard could not be reached within the retry window.</exception>
    public void Open() => Run(Enumerable.Range(0, Config.Shards).Select(s => WithRetry(s, "load", async cancel =>
    {
        await EnsureReady(s, cancel).ConfigureAwait(false);
        return 0;
    })).ToArray());

    /// <summary>Moves every shard to the point <paramref name="parameters"/> (a new version).</summary>
    public void SetPoint(Tensor parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var values = parameters.detach().to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        if (values.Length != ParameterCount)
        {
            throw new ArgumentException($"a point of {values.Length} parameters for a model of {ParameterCount}", nameof(parameters));
        }
        _point = values;
        using (var scope = NewDisposeScope())
        {
            ParameterVector.Set(_replica, tensor(values, ScalarType.Float64));
        }
        Version++;
        Open();
    }

    /// <summary>L = Σ_s L_s.</summary>
    public double Loss()
    {
        using var scope = NewDisposeScope();
        return Sum(ShardQuantity.Loss, null).item<double>();
    }

    /// <summary>∇L = Σ_s ∇L_s, n values.</summary>
    public Tensor Gradient() => Sum(ShardQuantity.Gradient, null).reshape(-1);

    /// <summary>H, the shards' residuals stacked in row order, ℓ·d values.</summary>
    public Tensor Residuals() => Stack(ShardQuantity.Residuals, null).reshape(-1);

    /// <inheritdoc/>
    public double MaxAbsTarget => _data.MaxAbsTarget();

    /// <inheritdoc/>
    public Tensor GetPoint() => tensor((double[])_point.Clone(), dtype: ScalarType.Float64);

    /// <inheritdoc/>
    /// <remarks>One round of shard calls: each shard's L_s and ∇L_s from one forward and one backward pass, summed in shard order.</remarks>
    public (double Loss, Tensor Gradient) LossAndGradient()
    {
        using var scope = NewDisposeScope();
        var sum = Sum(ShardQuantity.LossAndGradient, null).reshape(-1);
        return (sum[0].item<double>(), sum.narrow(0, 1, sum.shape[0] - 1).clone().MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    /// <remarks>One round of shard calls: Σ_s ∇²L_s V, each shard by Pearlmutter's product on its rows.</remarks>
    public Tensor HessianTimes(Tensor block) => Sum(ShardQuantity.Hessian, block);

    /// <inheritdoc/>
    /// <remarks>Σ_s J_sᵀ ℓ″ J_s V.</remarks>
    public Tensor GaussNewtonTimes(Tensor block) => Sum(ShardQuantity.GaussNewton, block);

    /// <inheritdoc/>
    /// <remarks>[J_0 V; J_1 V; …], the shards' blocks stacked in row order.</remarks>
    public Tensor JacobianTimes(Tensor block) => Stack(ShardQuantity.Jacobian, block);

    /// <inheritdoc/>
    /// <remarks>Σ_s J_sᵀ W_s, each shard sent only its own rows W_s of W.</remarks>
    public Tensor JacobianTransposeTimes(Tensor block)
    {
        ArgumentNullException.ThrowIfNull(block);
        using var scope = NewDisposeScope();
        int l = Outputs;
        var parts = Gather(s => (ShardQuantity.JacobianTranspose, block.narrow(0, (long)Ranges[s].First * l, (long)Ranges[s].Count * l)));
        return SumInOrder(parts).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    /// <remarks>The shards' rows of J stacked in row order: J travels to the driver (ℓd × n), for the routes that form it.</remarks>
    public Tensor Jacobian() => Stack(ShardQuantity.JacobianRows, null);

    /// <inheritdoc/>
    /// <remarks>
    /// Each shard's a (d_s × in) and δ (ℓd_s × out) per layer, stacked over the shards in row order: d × in and ℓd × out
    /// travel to the driver, never J, and the Gram matrix is formed there by the one blocked, exactly symmetric assembly.
    /// </remarks>
    public IReadOnlyList<(Tensor Inputs, Tensor Deltas)>? GramFactors()
    {
        if (_network is not Mlp mlp)
        {
            return null;
        }
        using var scope = NewDisposeScope();
        int l = Outputs;
        var flats = Gather(s => (ShardQuantity.GramFactors, null));
        var factors = new (Tensor Inputs, Tensor Deltas)[mlp.Layers.Count];
        var inputs = new List<Tensor>[mlp.Layers.Count];
        var deltas = new List<Tensor>[mlp.Layers.Count];
        for (int k = 0; k < factors.Length; k++)
        {
            inputs[k] = [];
            deltas[k] = [];
        }
        for (int s = 0; s < flats.Length; s++)
        {
            long d = Ranges[s].Count, offset = 0;
            var flat = flats[s].reshape(-1);
            for (int k = 0; k < mlp.Layers.Count; k++)
            {
                long aSize = d * mlp.Layers[k].In, deltaSize = d * l * mlp.Layers[k].Out;
                inputs[k].Add(flat.narrow(0, offset, aSize).reshape(d, mlp.Layers[k].In));
                offset += aSize;
                deltas[k].Add(flat.narrow(0, offset, deltaSize).reshape(d * l, mlp.Layers[k].Out));
                offset += deltaSize;
            }
            if (offset != flat.shape[0])
            {
                throw new InvalidDataException($"shard {s} sent {flat.shape[0]} factor values, expected {offset}");
            }
        }
        for (int k = 0; k < factors.Length; k++)
        {
            factors[k] = (cat(inputs[k], 0).MoveToOuterDisposeScope(), cat(deltas[k], 0).MoveToOuterDisposeScope());
        }
        return factors;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Each shard is sent the batch's rows that are its own (as indices within the shard) and answers [L_s, ∇L_s] over
    /// them; shards without a row of the batch are not called. The sum is in shard order.
    /// </remarks>
    public (double Loss, Tensor Gradient) RowsLossAndGradient(long[] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        using var scope = NewDisposeScope();
        var own = new List<double>[Config.Shards];
        for (int s = 0; s < own.Length; s++)
        {
            own[s] = [];
        }
        foreach (long row in rows)
        {
            if (row < 0 || row >= Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), row, $"a row index outside 0 … {Rows - 1}");
            }
            int s = ShardOf(row);
            own[s].Add(row - Ranges[s].First);
        }
        var called = Enumerable.Range(0, Config.Shards).Where(s => own[s].Count > 0).ToArray();
        if (called.Length == 0)
        {
            return (0.0, zeros(ParameterCount, dtype: ScalarType.Float64).MoveToOuterDisposeScope());
        }
        var sum = SumInOrder(Gather(s => (ShardQuantity.RowsLossAndGradient, tensor(own[s].ToArray(), ScalarType.Float64).unsqueeze(1)), called)).reshape(-1);
        return (sum[0].item<double>(), sum.narrow(0, 1, sum.shape[0] - 1).clone().MoveToOuterDisposeScope());
    }

    /// <summary>The shard whose rows hold <paramref name="row"/> (the ranges are contiguous and in order).</summary>
    private int ShardOf(long row)
    {
        int lo = 0, hi = Ranges.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Ranges[mid].First <= row)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return lo;
    }

    /// <summary>Releases the driver's replica of the model.</summary>
    public void Dispose() => _replica.Dispose();

    private Tensor Sum(ShardQuantity quantity, Tensor? block)
    {
        using var scope = NewDisposeScope();
        return SumInOrder(Gather(_ => (quantity, block))).MoveToOuterDisposeScope();
    }

    private Tensor Stack(ShardQuantity quantity, Tensor? block)
    {
        using var scope = NewDisposeScope();
        return cat(Gather(_ => (quantity, block)), 0).MoveToOuterDisposeScope();
    }

    private static Tensor SumInOrder(Tensor[] parts)
    {
        // Shard order, always: the sum is the same from run to run whatever order the replies arrive in.
        var total = parts[0].clone();
        for (int s = 1; s < parts.Length; s++)
        {
            total.PlusInPlace(parts[s]);
        }
        return total;
    }

    /// <summary>Asks every shard (or those of <paramref name="shards"/>) in parallel and returns the answers in shard order (each a rows × columns float64 tensor).</summary>
    private Tensor[] Gather(Func<int, (ShardQuantity Quantity, Tensor? Block)> request, IReadOnlyList<int>? shards = null)
    {
        Cancellation.ThrowIfCancellationRequested();
        shards ??= Enumerable.Range(0, Config.Shards).ToArray();
        var watch = Stopwatch.StartNew();
        var inputs = new (ShardQuantity Quantity, byte[]? Bytes, long Rows, long Columns)[shards.Count];
        var serialize = Stopwatch.StartNew();
        for (int i = 0; i < inputs.Length; i++)
        {
            var (quantity, block) = request(shards[i]);
            inputs[i] = block is null ? (quantity, null, 0, 0) : (quantity, VectorBytes.FromTensor(block), block.shape[0], block.dim() == 2 ? block.shape[1] : 1);
        }
        double serializeSeconds = serialize.Elapsed.TotalSeconds;
        var replies = Run(Enumerable.Range(0, inputs.Length).Select(i => WithRetry(shards[i], inputs[i].Quantity.ToString(), cancel => Ask(shards[i], inputs[i], cancel))).ToArray());
        serialize.Restart();
        var results = replies.Select(r => VectorBytes.ToTensor(r.Bytes, r.Rows, r.Columns)).ToArray();
        serializeSeconds += serialize.Elapsed.TotalSeconds;
        Timings.Add(watch.Elapsed.TotalSeconds, replies.Max(r => r.ComputeSeconds), serializeSeconds,
            inputs.Sum(i => (long)(i.Bytes?.Length ?? 0)), replies.Sum(r => (long)r.Bytes.Length));
        AfterCall?.Invoke(Interlocked.Increment(ref _calls));
        return results;
    }

    private static T[] Run<T>(Task<T>[] tasks)
    {
        try
        {
            return Task.WhenAll(tasks).GetAwaiter().GetResult();
        }
        catch (Exception) when (tasks.FirstOrDefault(t => t.IsFaulted && t.Exception!.InnerException is LandscapeInputException) is { } bad)
        {
            throw bad.Exception!.InnerException!;
        }
    }

    private sealed record Answer(byte[] Bytes, long Rows, long Columns, double ComputeSeconds);

    private IShardGrain Grain(int s) => _grains.GetGrain<IShardGrain>($"{Id}/{s}");

    private string NewPayload(string what) => string.Create(CultureInfo.InvariantCulture, $"{what}-{Interlocked.Increment(ref _payloads)}");

    private async Task Send(IShardGrain grain, string name, byte[] bytes, CancellationToken cancel)
    {
        var chunks = VectorBytes.Split(bytes, Config.ChunkBytes);
        for (int i = 0; i < chunks.Length; i++)
        {
            await grain.Stage(name, i, chunks.Length, chunks[i]).WaitAsync(Config.CallTimeout, cancel).ConfigureAwait(false);
        }
    }

    /// <summary>Loads shard s if it is not, and sends it the current point if it holds another.</summary>
    private async Task EnsureReady(int s, CancellationToken cancel)
    {
        var grain = Grain(s);
        long version = Version;
        if (!_loaded[s])
        {
            string name = NewPayload("model");
            await Send(grain, name, Encoding.UTF8.GetBytes(ModelFile.Serialize(new NetworkPoint(_network, _point))), cancel).ConfigureAwait(false);
            var reply = await grain.Load(_loads[s] with { ModelPayload = name, Version = version }).WaitAsync(Config.CallTimeout, cancel).ConfigureAwait(false);
            switch (reply.Status)
            {
                case ShardStatus.Ok when reply.Rows != Ranges[s].Count || reply.Parameters != ParameterCount:
                    throw new LandscapeInputException($"shard {s}: the worker holds {reply.Rows} rows and a model of {reply.Parameters} parameters, the driver {Ranges[s].Count} and {ParameterCount}");
                case ShardStatus.Ok:
                    _silos[s] = reply.Silo ?? "?";
                    _activations[s] = reply.Activation;
                    _loaded[s] = true;
                    _shardVersions[s] = version;
                    return;
                case ShardStatus.InputError:
                    throw new LandscapeInputException(reply.Message ?? $"shard {s}: bad input");
                default:
                    throw new ShardStatusException(reply.Status, reply.Message);
            }
        }
        if (_shardVersions[s] != version)
        {
            string name = NewPayload("point");
            await Send(grain, name, VectorBytes.FromDoubles(_point), cancel).ConfigureAwait(false);
            var status = await grain.SetPoint(version, name).WaitAsync(Config.CallTimeout, cancel).ConfigureAwait(false);
            if (status == ShardStatus.NotLoaded)
            {
                _loaded[s] = false;
            }
            if (status != ShardStatus.Ok)
            {
                throw new ShardStatusException(status, "setting the point");
            }
            _shardVersions[s] = version;
        }
    }

    private async Task<Answer> Ask(int s, (ShardQuantity Quantity, byte[]? Bytes, long Rows, long Columns) input, CancellationToken cancel)
    {
        await EnsureReady(s, cancel).ConfigureAwait(false);
        var grain = Grain(s);
        long version = Version;
        string? inputName = null;
        if (input.Bytes is { } bytes)
        {
            inputName = NewPayload("input");
            await Send(grain, inputName, bytes, cancel).ConfigureAwait(false);
        }
        string resultName = NewPayload("result");
        var reply = await grain.Compute(new ShardRequest
        {
            Quantity = input.Quantity, Version = version, InputPayload = inputName, InputRows = input.Rows, InputColumns = input.Columns, ResultPayload = resultName,
        }).WaitAsync(Config.CallTimeout, cancel).ConfigureAwait(false);
        switch (reply.Status)
        {
            case ShardStatus.Ok when reply.Version == version:
                break;
            case ShardStatus.Ok:
            case ShardStatus.OtherVersion:
                _shardVersions[s] = reply.Version;
                throw new ShardStatusException(ShardStatus.OtherVersion, $"answered for version {reply.Version}, the point is version {version}");
            case ShardStatus.NotLoaded:
                _loaded[s] = false;
                throw new ShardStatusException(reply.Status, reply.Message);
            default:
                throw new ShardStatusException(reply.Status, reply.Message);
        }
        var chunks = new byte[reply.Chunks][];
        chunks[0] = reply.FirstChunk;
        for (int i = 1; i < chunks.Length; i++)
        {
            chunks[i] = await grain.Fetch(resultName, i).WaitAsync(Config.CallTimeout, cancel).ConfigureAwait(false)
                ?? throw new ShardStatusException(ShardStatus.MissingPayload, $"result chunk {i} of {chunks.Length} is gone");
        }
        return new Answer(VectorBytes.Join(chunks), reply.Rows, reply.Columns, reply.ComputeSeconds);
    }

    /// <summary>
    /// Runs one shard call (<see cref="Watched{T}"/>); on a failure marks the shard for reloading and tries again until the
    /// retry window closes: at once after a call given up as lost, after <see cref="RetryDelay"/> after any other failure.
    /// </summary>
    private async Task<T> WithRetry<T>(int s, string what, Func<CancellationToken, Task<T>> call)
    {
        var start = Stopwatch.StartNew();
        int statusAttempts = 0;
        for (int attempt = 1; ; attempt++)
        {
            var attemptStart = Stopwatch.StartNew();
            try
            {
                return await Watched(s, call).ConfigureAwait(false);
            }
            catch (ShardStatusException e) when (++statusAttempts < MaxStatusAttempts)
            {
                Record(new ShardRetry(s, what, attempt, e.Message, attemptStart.Elapsed.TotalSeconds));
            }
            catch (ShardStatusException e)
            {
                throw new ShardUnavailableException(s, $"shard {s} did not answer {what} after {attempt} attempts: {e.Message}", e);
            }
            catch (Exception e) when (e is ShardLostException || IsTransient(e))
            {
                if (e is not ShardLostException { ActivationLost: false })
                {
                    _loaded[s] = false; // reloaded by the next attempt; a shard whose activation lives on keeps its data
                }
                string reason = e is ShardLostException ? e.Message : $"{e.GetType().Name}: {OneLine(e.Message)}";
                if (start.Elapsed > Config.RetryWindow)
                {
                    throw new ShardUnavailableException(s, string.Create(CultureInfo.InvariantCulture,
                        $"shard {s} did not answer {what} within the retry window of {Config.RetryWindowSeconds:G} s ({attempt} attempts; last: {reason})"), e);
                }
                Record(new ShardRetry(s, what, attempt, reason, attemptStart.Elapsed.TotalSeconds));
                if (e is not ShardLostException)
                {
                    await Task.Delay(RetryDelay).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// One attempt at a shard call, watched while it is pending: after <see cref="LivenessPeriod"/> and then every period the
    /// shard's activation is pinged (<see cref="IShardGrain.Ping"/>). The call is given up as lost (<see cref="ShardLostException"/>)
    /// when a ping fails or goes unanswered for <see cref="PingTimeout"/> (the worker is gone: its process, its machine, or
    /// the route to it), when another activation answers (the shard was placed anew: the one serving the call is gone), or when
    /// the client loses a gateway connection (the call's request or reply may have travelled through it).
    /// </summary>
    /// <remarks>
    /// The activation expected is the one that loaded the shard; for a shard not loaded yet, the one that answers the first
    /// ping, sent at once. A call given up is cancelled; a reply that arrives for it later is dropped by Orleans.
    /// </remarks>
    private async Task<T> Watched<T>(int s, Func<CancellationToken, Task<T>> call)
    {
        using var abandon = CancellationTokenSource.CreateLinkedTokenSource(_gateways?.Lost ?? CancellationToken.None);
        string? expected = _loaded[s] ? _activations[s] : null;
        string? lost = null;
        var work = call(abandon.Token);
        try
        {
            var wait = expected is null ? TimeSpan.Zero : LivenessPeriod;
            while (!work.IsCompleted && lost is null)
            {
                await Task.WhenAny(work, Task.Delay(wait, abandon.Token)).ConfigureAwait(false);
                wait = LivenessPeriod;
                if (work.IsCompleted || abandon.IsCancellationRequested)
                {
                    break;
                }
                try
                {
                    string activation = await Grain(s).Ping().WaitAsync(PingTimeout, abandon.Token).ConfigureAwait(false);
                    if (expected is null)
                    {
                        expected = activation;
                    }
                    else if (!string.Equals(activation, expected, StringComparison.Ordinal))
                    {
                        lost = $"worker lost: another activation answers for the shard ({activation}, was {expected})";
                    }
                }
                catch (OperationCanceledException) when (abandon.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception e)
                {
                    lost = $"worker lost: no answer to a ping ({e.GetType().Name}: {OneLine(e.Message)})";
                }
            }
            if (lost is not null)
            {
                abandon.Cancel();
            }
            return await work.ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (abandon.IsCancellationRequested)
        {
            // Cancelled by the watch itself (lost), else by the gateway watch: the shard's activation may live on.
            throw new ShardLostException(lost ?? "call lost: the driver lost a gateway connection the call may have used", activationLost: lost is not null, e);
        }
        finally
        {
            // The call is over either way: this ends the pending Task.Delay.
            abandon.Cancel();
        }
    }

    private static string OneLine(string message)
    {
        var line = message.ReplaceLineEndings(" ");
        const int longest = 200; // keeps a retry line on one screen line or two
        return line.Length <= longest ? line : line[..longest] + "…";
    }

    private static bool IsTransient(Exception e) =>
        e is TimeoutException or OrleansException or IOException or System.Net.Sockets.SocketException or OperationCanceledException;

    private void Record(ShardRetry retry)
    {
        lock (_gate)
        {
            _retries.Add(retry);
        }
        OnRetry?.Invoke(retry);
    }

    private sealed class ShardStatusException(ShardStatus status, string? message) : Exception($"{status}: {message}");

    /// <summary>
    /// A call given up while pending (<see cref="Watched{T}"/>): its worker is gone (<paramref name="activationLost"/>), or the
    /// route to it, a gateway, and the shard's activation may live on.
    /// </summary>
    private sealed class ShardLostException(string message, bool activationLost, Exception inner) : Exception(message, inner)
    {
        /// <summary>Whether the shard's activation is gone with the worker (its data must be reloaded).</summary>
        public bool ActivationLost { get; } = activationLost;
    }
}

/// <summary>How the workers read the data for themselves: the CLI's <c>--data</c>, <c>--target</c>, <c>--one-hot</c>, <c>--dedupe</c>.</summary>
/// <param name="Source">A CSV path (readable by every worker), <c>builtin:NAME</c> or <c>synthetic:…</c>.</param>
/// <param name="Targets">Target columns, or empty.</param>
/// <param name="OneHot">The one-hot class column, or null.</param>
/// <param name="Dedupe">Whether duplicate inputs are removed.</param>
public sealed record DataSource(string Source, IReadOnlyList<string> Targets, string? OneHot = null, bool Dedupe = false);

/// <summary>One retried shard call.</summary>
/// <param name="Shard">The shard index.</param>
/// <param name="What">The call (load, Hessian, Gradient, …).</param>
/// <param name="Attempt">The attempt that failed (1 = the first).</param>
/// <param name="Reason">Why, in one line.</param>
/// <param name="Seconds">How long the failed attempt ran before it failed or was given up.</param>
public sealed record ShardRetry(int Shard, string What, int Attempt, string Reason, double Seconds);

/// <summary>A shard that did not answer within the retry window: the run fails rather than sum a partial result.</summary>
public sealed class ShardUnavailableException : Exception
{
    /// <summary>A failure of shard <paramref name="shard"/>.</summary>
    public ShardUnavailableException(int shard, string message, Exception? inner = null) : base(message, inner) => Shard = shard;

    /// <summary>The shard that did not answer.</summary>
    public int Shard { get; }
}

/// <summary>Where the time of the distributed calls went: wall, the slowest shard's compute, (de)serialisation on the driver, and bytes moved.</summary>
public sealed class ClusterTimings
{
    private readonly object _gate = new();

    /// <summary>Calls so far (one per operator application or sum).</summary>
    public int Calls { get; private set; }

    /// <summary>Wall seconds of all calls.</summary>
    public double WallSeconds { get; private set; }

    /// <summary>Σ over calls of the slowest shard's compute seconds (the critical path of the work).</summary>
    public double ComputeSeconds { get; private set; }

    /// <summary>Seconds the driver spent turning tensors into bytes and back.</summary>
    public double SerializeSeconds { get; private set; }

    /// <summary>Bytes sent to the shards (inputs; points and models not counted).</summary>
    public long BytesSent { get; private set; }

    /// <summary>Bytes received from the shards.</summary>
    public long BytesReceived { get; private set; }

    /// <summary>Wall − compute − serialisation: messaging, transfer and waiting.</summary>
    public double TransferSeconds => Math.Max(0, WallSeconds - ComputeSeconds - SerializeSeconds);

    internal void Add(double wall, double compute, double serialize, long sent, long received)
    {
        lock (_gate)
        {
            Calls++;
            WallSeconds += wall;
            ComputeSeconds += compute;
            SerializeSeconds += serialize;
            BytesSent += sent;
            BytesReceived += received;
        }
    }

    /// <summary>Starts counting again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            Calls = 0;
            WallSeconds = ComputeSeconds = SerializeSeconds = 0;
            BytesSent = BytesReceived = 0;
        }
    }
}
