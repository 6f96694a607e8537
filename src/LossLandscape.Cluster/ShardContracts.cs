using Orleans.Concurrency;

namespace LossLandscape.Cluster;

/// <summary>What a shard computes on its rows (one request kind per quantity of issue 12 §1).</summary>
public enum ShardQuantity
{
    /// <summary>H_s, the shard's residuals, ℓ·d_s values in row order.</summary>
    Residuals,

    /// <summary>L_s = Σ |hᵢ|^a over the shard's rows, one value.</summary>
    Loss,

    /// <summary>∇L_s, n values.</summary>
    Gradient,

    /// <summary>∇²L_s V for an n × k block V (column-major bytes), n × k.</summary>
    Hessian,

    /// <summary>G_s V = J_sᵀ ℓ″ J_s V, the generalised Gauss–Newton block product, n × k.</summary>
    GaussNewton,

    /// <summary>J_s V, (ℓ·d_s) × k.</summary>
    Jacobian,

    /// <summary>J_sᵀ W for the shard's (ℓ·d_s) × k slice W, n × k.</summary>
    JacobianTranspose,

    /// <summary>
    /// The per-layer factors of J_s (an MLP only): for each layer the inputs a (d_s × in) and the back-propagated δ
    /// (d_s·ℓ × out), concatenated; the driver forms every Gram block from them.
    /// </summary>
    GramFactors,

    /// <summary>J_s, the shard's rows of J, (ℓ·d_s) × n: gathered only when J fits the driver's SVD route.</summary>
    JacobianRows,

    /// <summary>[L_s, ∇L_s]: the loss and its gradient from one forward and one backward pass, 1 + n values.</summary>
    LossAndGradient,

    /// <summary>
    /// [Σ_{i∈B_s}|hᵢ|^a, its gradient] over the rows B_s of a mini-batch that are the shard's own (the input block: their
    /// indices within the shard, one column), 1 + n values.
    /// </summary>
    RowsLossAndGradient,
}

/// <summary>Why a shard did not answer with a result.</summary>
public enum ShardStatus
{
    /// <summary>The result is in the reply.</summary>
    Ok,

    /// <summary>This activation has no data or model: a fresh activation, after a worker restart. The driver reloads it.</summary>
    NotLoaded,

    /// <summary>The shard holds another point version than the request's. The driver sends the point again.</summary>
    OtherVersion,

    /// <summary>A staged payload the request names is missing (the activation changed between chunks). The driver resends.</summary>
    MissingPayload,

    /// <summary>The request is bad input (data that does not fit the model, rows that differ from the driver's); not retried.</summary>
    InputError,
}

/// <summary>What a shard needs to load itself: where the data is, which rows are its own, and the model.</summary>
[GenerateSerializer, Immutable]
[Alias("LossLandscape.Cluster.ShardLoadRequest")]
public sealed record ShardLoadRequest
{
    /// <summary>The data source as the CLI takes it: a CSV path, <c>builtin:NAME</c> or <c>synthetic:…</c>; read by the worker itself.</summary>
    [Id(0)] public required string DataSource { get; init; }

    /// <summary>Target columns (<c>--target</c>); empty for the last column or <see cref="OneHot"/>.</summary>
    [Id(1)] public required string[] Targets { get; init; }

    /// <summary>The one-hot class column (<c>--one-hot</c>), or null.</summary>
    [Id(2)] public string? OneHot { get; init; }

    /// <summary>Whether duplicate inputs are removed first (<c>--dedupe</c>).</summary>
    [Id(3)] public bool Dedupe { get; init; }

    /// <summary>This shard's index s, 0 ≤ s &lt; <see cref="ShardCount"/>.</summary>
    [Id(4)] public int ShardIndex { get; init; }

    /// <summary>How many shards the data is split into.</summary>
    [Id(5)] public int ShardCount { get; init; }

    /// <summary>The number of rows the driver read: a worker that reads another number refuses (different data).</summary>
    [Id(6)] public int TotalRows { get; init; }

    /// <summary>The loss exponent a of L = Σ|hᵢ|^a.</summary>
    [Id(7)] public double Exponent { get; init; } = 2.0;

    /// <summary>Rows per autograd batch within the shard, or null for all at once.</summary>
    [Id(8)] public int? BatchSize { get; init; }

    /// <summary>The staged payload holding the model file (UTF-8 JSON, <see cref="Models.ModelFile"/>) at the point of <see cref="Version"/>.</summary>
    [Id(9)] public required string ModelPayload { get; init; }

    /// <summary>The point version the model's parameters belong to.</summary>
    [Id(10)] public long Version { get; init; }

    /// <summary>The FNV-1a fingerprint of the driver's rows of this shard (inputs and targets as IEEE bytes), compared by the worker.</summary>
    [Id(11)] public ulong RowsFingerprint { get; init; }

    /// <summary>The loss (<see cref="Problem.LossKind"/>); a mean loss divides by <see cref="TotalRows"/> on every shard.</summary>
    [Id(12)] public Problem.LossKind Loss { get; init; }
}

/// <summary>A computation on the shard's rows at one point version.</summary>
[GenerateSerializer, Immutable]
[Alias("LossLandscape.Cluster.ShardRequest")]
public sealed record ShardRequest
{
    /// <summary>What to compute.</summary>
    [Id(0)] public ShardQuantity Quantity { get; init; }

    /// <summary>The point version the result must belong to.</summary>
    [Id(1)] public long Version { get; init; }

    /// <summary>The staged payload holding the input block (column-major doubles), or null for quantities without one.</summary>
    [Id(2)] public string? InputPayload { get; init; }

    /// <summary>Rows of the input block.</summary>
    [Id(3)] public long InputRows { get; init; }

    /// <summary>Columns k of the input block.</summary>
    [Id(4)] public long InputColumns { get; init; }

    /// <summary>The name under which a result longer than one chunk is kept for <see cref="IShardGrain.Fetch"/>.</summary>
    [Id(5)] public required string ResultPayload { get; init; }
}

/// <summary>A shard's answer: status, the version it answered for, and the first chunk of the result.</summary>
[GenerateSerializer, Immutable]
[Alias("LossLandscape.Cluster.ShardReply")]
public sealed record ShardReply
{
    /// <summary>Whether a result is here, and if not why.</summary>
    [Id(0)] public ShardStatus Status { get; init; }

    /// <summary>The point version the shard holds (the driver never sums a reply of another version).</summary>
    [Id(1)] public long Version { get; init; }

    /// <summary>Rows of the result.</summary>
    [Id(2)] public long Rows { get; init; }

    /// <summary>Columns of the result.</summary>
    [Id(3)] public long Columns { get; init; }

    /// <summary>The result's first chunk (column-major doubles as bytes).</summary>
    [Id(4)] public byte[] FirstChunk { get; init; } = [];

    /// <summary>How many chunks the result has; chunks 1 … Chunks − 1 come from <see cref="IShardGrain.Fetch"/>.</summary>
    [Id(5)] public int Chunks { get; init; } = 1;

    /// <summary>A one-line reason when <see cref="Status"/> is not <see cref="ShardStatus.Ok"/>.</summary>
    [Id(6)] public string? Message { get; init; }

    /// <summary>Seconds the shard spent computing (not serialising or waiting).</summary>
    [Id(7)] public double ComputeSeconds { get; init; }
}

/// <summary>What a shard reports after loading.</summary>
[GenerateSerializer, Immutable]
[Alias("LossLandscape.Cluster.ShardLoadReply")]
public sealed record ShardLoadReply
{
    /// <summary><see cref="ShardStatus.Ok"/>, <see cref="ShardStatus.MissingPayload"/> or <see cref="ShardStatus.InputError"/>.</summary>
    [Id(0)] public ShardStatus Status { get; init; }

    /// <summary>The shard's first row.</summary>
    [Id(1)] public int FirstRow { get; init; }

    /// <summary>The shard's row count d_s.</summary>
    [Id(2)] public int Rows { get; init; }

    /// <summary>The model's parameter count n.</summary>
    [Id(3)] public int Parameters { get; init; }

    /// <summary>A one-line reason when <see cref="Status"/> is not <see cref="ShardStatus.Ok"/>.</summary>
    [Id(4)] public string? Message { get; init; }

    /// <summary>The silo that hosts the activation, for reports.</summary>
    [Id(5)] public string? Silo { get; init; }

    /// <summary>The activation that loaded the shard (<see cref="IShardGrain.Ping"/> answers the same while it lives).</summary>
    [Id(6)] public string? Activation { get; init; }
}

/// <summary>
/// A shard worker: holds rows [⌊sN/S⌋, ⌊(s+1)N/S⌋) of the data (read by the worker itself) and the model at one point
/// version, and answers the sums of issue 12 §1 over those rows. Keyed by <c>session/shard</c>.
/// </summary>
/// <remarks>
/// Payloads longer than one message travel in chunks: <see cref="Stage"/> takes them piece by piece under a name, a request
/// names it; a result longer than one chunk is fetched with <see cref="Fetch"/>. A fresh activation (a restarted worker)
/// holds nothing and answers <see cref="ShardStatus.NotLoaded"/>; the driver then reloads it: the worker reads its rows again
/// and the driver sends the current point.
/// </remarks>
[Alias("LossLandscape.Cluster.IShardGrain")]
public interface IShardGrain : IGrainWithStringKey
{
    /// <summary>Stores chunk <paramref name="index"/> of <paramref name="count"/> of payload <paramref name="name"/>.</summary>
    [Alias("Stage")]
    Task Stage(string name, int index, int count, byte[] chunk);

    /// <summary>Reads its rows and builds the model from a staged model file.</summary>
    [Alias("Load")]
    Task<ShardLoadReply> Load(ShardLoadRequest request);

    /// <summary>Moves to point <paramref name="version"/>, whose n parameters are the staged payload <paramref name="payload"/>.</summary>
    [Alias("SetPoint")]
    Task<ShardStatus> SetPoint(long version, string payload);

    /// <summary>Computes <see cref="ShardRequest.Quantity"/> on the shard's rows.</summary>
    [Alias("Compute")]
    Task<ShardReply> Compute(ShardRequest request);

    /// <summary>Chunk <paramref name="index"/> of a kept result, or null when this activation no longer has it.</summary>
    [Alias("Fetch")]
    Task<byte[]?> Fetch(string name, int index);

    /// <summary>
    /// This activation's identity: its silo and a number drawn when it was created. Answered at once, beside a call in
    /// progress (<see cref="AlwaysInterleaveAttribute"/>), so that the driver can ask, while a call is pending, whether the
    /// activation serving it is still there.
    /// </summary>
    [Alias("Ping")]
    [AlwaysInterleave]
    Task<string> Ping();
}
