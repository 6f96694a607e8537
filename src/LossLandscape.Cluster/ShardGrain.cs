using System.Diagnostics;
using System.Text;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Problem;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace LossLandscape.Cluster;

/// <summary>
/// The shard worker (<see cref="IShardGrain"/>): its rows of the data, read by itself, and the model at one point version;
/// every sum runs the library's single-process problem (<see cref="ResidualMap"/>) on those rows.
/// </summary>
/// <remarks>
/// <para>All torch work (load, point, products) runs on the worker process's one compute thread (<see cref="ShardComputeThread"/>).</para>
/// Nothing is persisted: a reactivation starts empty and answers <see cref="ShardStatus.NotLoaded"/> until the driver reloads
/// it, so a restarted worker never answers with missing data or another point's parameters.
/// </remarks>
[ShardPlacement]
internal sealed class ShardGrain : Grain, IShardGrain
{
    private readonly Dictionary<string, byte[]?[]> _staged = new(StringComparer.Ordinal);
    private readonly ILogger<ShardGrain> _log;
    private NetworkModel? _model;
    private ResidualMap? _map;
    private long _version = -1;
    private string? _keptName;
    private byte[][]? _kept;

    /// <summary>Drawn once per activation: a restarted worker's or a re-placed shard's activation answers another <see cref="Ping"/>.</summary>
    private readonly string _draw = Guid.NewGuid().ToString("N");

    /// <summary>Takes Orleans' logger.</summary>
    public ShardGrain(ILogger<ShardGrain> log) => _log = log;

    /// <inheritdoc />
    public Task Stage(string name, int index, int count, byte[] chunk)
    {
        if (count < 1 || index < 0 || index >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), $"chunk {index} of {count}");
        }
        if (!_staged.TryGetValue(name, out var parts) || parts.Length != count)
        {
            parts = new byte[count][];
            _staged[name] = parts;
        }
        parts[index] = chunk;
        return Task.CompletedTask;
    }

    private byte[]? Take(string name)
    {
        if (!_staged.Remove(name, out var parts) || parts.Any(p => p is null))
        {
            return null;
        }
        return VectorBytes.Join(parts!);
    }

    /// <inheritdoc />
    public Task<ShardLoadReply> Load(ShardLoadRequest request) => ShardComputeThread.Run(() => LoadHere(request));

    private ShardLoadReply LoadHere(ShardLoadRequest request)
    {
        var modelBytes = Take(request.ModelPayload);
        if (modelBytes is null)
        {
            return new ShardLoadReply { Status = ShardStatus.MissingPayload, Message = "the model payload did not arrive whole" };
        }
        try
        {
            Release();
            var data = DatasetLoader.Load(request.DataSource, new TargetSpec(request.Targets, request.OneHot));
            if (request.Dedupe)
            {
                data = data.Dedupe();
            }
            if (data.Count != request.TotalRows)
            {
                return InputError($"shard {request.ShardIndex}: the worker read {data.Count} rows from {request.DataSource}, the driver {request.TotalRows}: not the same data");
            }
            var (first, count) = ShardRanges.Of(request.ShardIndex, request.ShardCount, data.Count);
            var rows = data.Subset(Enumerable.Range(first, count));
            if (VectorBytes.Fingerprint(rows) != request.RowsFingerprint)
            {
                return InputError($"shard {request.ShardIndex}: the worker's rows {first} … {first + count - 1} of {request.DataSource} differ from the driver's: not the same data");
            }
            var point = ModelFile.Parse(Encoding.UTF8.GetString(modelBytes), $"the driver's model (shard {request.ShardIndex})");
            var model = point.ToModel();
            try
            {
                _map = new ResidualMap(model, rows, new LossFunction(request.Loss, request.Exponent), request.BatchSize, meanRows: request.TotalRows);
            }
            catch
            {
                model.Dispose();
                throw;
            }
            _model = model;
            _version = request.Version;
            _log.LogInformation("shard {Shard}: rows {First} … {Last}, n = {N}, version {Version}", request.ShardIndex, first, first + count - 1, model.ParameterCount, request.Version);
            Settings.Loaded?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"shard {request.ShardIndex} of {request.ShardCount} loaded: rows {first} … {first + count - 1}, n = {model.ParameterCount}, point version {request.Version}"));
            return new ShardLoadReply { Status = ShardStatus.Ok, FirstRow = first, Rows = count, Parameters = model.ParameterCount, Silo = RuntimeIdentity, Activation = Activation };
        }
        catch (Exception e) when (e is LandscapeInputException or DataFormatException or ModelFormatException or FileNotFoundException or DirectoryNotFoundException)
        {
            Release();
            return InputError($"shard {request.ShardIndex}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    private static ShardLoadReply InputError(string message) => new() { Status = ShardStatus.InputError, Message = message };

    /// <inheritdoc />
    public Task<ShardStatus> SetPoint(long version, string payload) => ShardComputeThread.Run(() => SetPointHere(version, payload));

    private ShardStatus SetPointHere(long version, string payload)
    {
        var bytes = Take(payload);
        if (_model is null)
        {
            return ShardStatus.NotLoaded;
        }
        if (bytes is null)
        {
            return ShardStatus.MissingPayload;
        }
        var values = VectorBytes.ToDoubles(bytes);
        if (values.Length != _model.ParameterCount)
        {
            throw new InvalidDataException($"a point of {values.Length} parameters for a model of {_model.ParameterCount}");
        }
        using (var scope = NewDisposeScope())
        {
            ParameterVector.Set(_model, tensor(values, ScalarType.Float64));
        }
        _version = version;
        return ShardStatus.Ok;
    }

    /// <inheritdoc />
    public Task<ShardReply> Compute(ShardRequest request) => ShardComputeThread.Run(() => ComputeHere(request));

    private ShardReply ComputeHere(ShardRequest request)
    {
        if (_map is null || _model is null)
        {
            return new ShardReply { Status = ShardStatus.NotLoaded, Version = _version, Message = "not loaded" };
        }
        if (request.Version != _version)
        {
            return new ShardReply { Status = ShardStatus.OtherVersion, Version = _version, Message = $"holds version {_version}, asked for {request.Version}" };
        }
        Tensor? input = null;
        using var scope = NewDisposeScope();
        if (request.InputPayload is { } name)
        {
            var bytes = Take(name);
            if (bytes is null)
            {
                return new ShardReply { Status = ShardStatus.MissingPayload, Version = _version, Message = $"payload {name} did not arrive whole" };
            }
            input = VectorBytes.ToTensor(bytes, request.InputRows, request.InputColumns);
        }
        var watch = Stopwatch.StartNew();
        if (Settings.ComputeDelay > TimeSpan.Zero)
        {
            Thread.Sleep(Settings.ComputeDelay); // the test hook's slow shard (ShardSettings.ComputeDelay)
        }
        var result = Evaluate(request.Quantity, input);
        double seconds = watch.Elapsed.TotalSeconds;
        var all = VectorBytes.FromTensor(result);
        long rows = result.dim() == 0 ? 1 : result.shape[0];
        long columns = result.dim() == 2 ? result.shape[1] : 1;
        var chunks = VectorBytes.Split(all, ChunkBytes);
        _keptName = chunks.Length > 1 ? request.ResultPayload : null;
        _kept = chunks.Length > 1 ? chunks : null;
        return new ShardReply
        {
            Status = ShardStatus.Ok, Version = _version, Rows = rows, Columns = columns, FirstChunk = chunks[0], Chunks = chunks.Length, ComputeSeconds = seconds,
        };
    }

    private Tensor Evaluate(ShardQuantity quantity, Tensor? input)
    {
        var map = _map!;
        Tensor Block() => input ?? throw new ArgumentException($"{quantity} needs an input block");
        return quantity switch
        {
            ShardQuantity.Residuals => map.Residuals(),
            ShardQuantity.Loss => tensor(map.Loss(), ScalarType.Float64),
            ShardQuantity.Gradient => map.Gradient(),
            ShardQuantity.Hessian => map.HessianTimes(Block()),
            ShardQuantity.GaussNewton => map.GaussNewtonTimes(Block()),
            ShardQuantity.Jacobian => map.JacobianTimes(Block()),
            ShardQuantity.JacobianTranspose => map.JacobianTransposeTimes(Block()),
            ShardQuantity.GramFactors => GramFactors(map),
            ShardQuantity.JacobianRows => map.Jacobian(),
            ShardQuantity.LossAndGradient => Joined(map.LossAndGradient()),
            ShardQuantity.RowsLossAndGradient => Joined(map.RowsLossAndGradient(Block().reshape(-1).to_type(ScalarType.Int64).data<long>().ToArray())),
            _ => throw new ArgumentOutOfRangeException(nameof(quantity), quantity, "unknown shard quantity"),
        };
    }

    /// <summary>[L, ∇L] as one vector of 1 + n values.</summary>
    private static Tensor Joined((double Loss, Tensor Gradient) value) =>
        cat([tensor(value.Loss, ScalarType.Float64).reshape(1), value.Gradient], 0);

    /// <summary>For each layer of the MLP: a (d_s × in), then δ (d_s·ℓ × out), all flattened into one vector.</summary>
    private static Tensor GramFactors(IResidualProblem map)
    {
        var factors = map.GramFactors() ?? throw new NotSupportedException("Gram factors need an MLP");
        return cat(factors.SelectMany(f => new[] { f.Inputs.reshape(-1), f.Deltas.reshape(-1) }).ToArray(), 0);
    }

    /// <inheritdoc />
    public Task<byte[]?> Fetch(string name, int index) =>
        Task.FromResult(_kept is { } kept && string.Equals(_keptName, name, StringComparison.Ordinal) && index >= 0 && index < kept.Length ? kept[index] : null);

    /// <inheritdoc />
    public Task<string> Ping() => Task.FromResult(Activation);

    /// <summary>This activation's identity: the silo and <see cref="_draw"/>.</summary>
    private string Activation => $"{RuntimeIdentity}#{_draw}";

    /// <summary>What the silo was started with (<see cref="ShardSettings"/>).</summary>
    private ShardSettings Settings => ServiceProvider.GetService(typeof(ShardSettings)) as ShardSettings ?? new ShardSettings(ClusterConfig.DefaultChunkBytes);

    /// <summary>The chunk size the silo was started with (<see cref="ClusterConfig.ChunkBytes"/>).</summary>
    private int ChunkBytes => Settings.ChunkBytes;

    /// <inheritdoc />
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        Release();
        return base.OnDeactivateAsync(reason, cancellationToken);
    }

    private void Release()
    {
        _map?.Dispose();
        _model?.Dispose();
        _map = null;
        _model = null;
        _kept = null;
        _keptName = null;
        _version = -1;
    }
}

/// <summary>
/// The one thread of a worker process on which its shards' torch work runs, in order of arrival. Orleans runs a grain's turns on
/// whichever pool thread is free, and each new thread that calls libtorch warms its own state and its own malloc arena: on
/// digits with the 64-1000-1000-10 MLP (n = 1,076,010) a one-shard HVP took 0.88 s of compute in the worker against 0.68 s in
/// one process, and 0.73 s with a single malloc arena (MALLOC_ARENA_MAX=1); on this thread 0.79 s, which MALLOC_ARENA_MAX=1 no
/// longer changes (bench cluster --workers 1, 8 repeats, 2 cores, 2026-11-25). The work is CPU-bound and parallel inside
/// libtorch, so shards sharing a worker lose nothing by taking turns.
/// </summary>
internal static class ShardComputeThread
{
    private static readonly System.Collections.Concurrent.BlockingCollection<Action> Queue = StartThread();

    /// <summary>Runs <paramref name="work"/> on the compute thread; its result or exception completes the task.</summary>
    public static Task<T> Run<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Queue.Add(() =>
        {
            try
            {
                done.SetResult(work());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        });
        return done.Task;
    }

    private static System.Collections.Concurrent.BlockingCollection<Action> StartThread()
    {
        var queue = new System.Collections.Concurrent.BlockingCollection<Action>();
        // Background: the silo's shutdown ends the process whatever is queued.
        new Thread(() =>
        {
            foreach (var work in queue.GetConsumingEnumerable())
            {
                work();
            }
        }) { IsBackground = true, Name = "LossLandscape shard compute" }.Start();
        return queue;
    }
}

/// <summary>What a silo tells its shard grains: the chunk size of replies, a test hook's delay, and where to say what they load.</summary>
/// <param name="ChunkBytes">The largest result chunk, <see cref="ClusterConfig.ChunkBytes"/>.</param>
/// <param name="ComputeDelay">
/// A test hook, zero unless set: every computation waits this long on the compute thread first, as a slow shard's would, so
/// that a test's kill at a random moment lands in a call in flight.
/// </param>
/// <param name="Loaded">Told one line each time a shard is loaded here (which shard, its rows, n, the point version), or null.</param>
public sealed record ShardSettings(int ChunkBytes, TimeSpan ComputeDelay = default, Action<string>? Loaded = null);

/// <summary>Which rows are shard s's: [⌊sN/S⌋, ⌊(s+1)N/S⌋), contiguous and as equal as integers allow.</summary>
public static class ShardRanges
{
    /// <summary>The first row and row count of shard <paramref name="shard"/> of <paramref name="shards"/> over <paramref name="rows"/> rows.</summary>
    /// <exception cref="LandscapeInputException">More shards than rows, or a shard index out of range.</exception>
    public static (int First, int Count) Of(int shard, int shards, int rows)
    {
        if (shards > rows)
        {
            throw new LandscapeInputException($"{shards} shards for {rows} rows: every shard needs at least one row (lower shards in the cluster file)");
        }
        if (shard < 0 || shard >= shards)
        {
            throw new LandscapeInputException($"shard {shard} is not in 0 … {shards - 1}");
        }
        int first = (int)((long)shard * rows / shards);
        int next = (int)((long)(shard + 1) * rows / shards);
        return (first, next - first);
    }
}
