using static TorchSharp.torch;

namespace LossLandscape.Data;

/// <summary>
/// Rows of data in a fixed, deterministic order, read batch by batch: d inputs xᵢ, each a block of values of one shape
/// (<see cref="InputShape"/>: [p] for a table's row, [c, h, w] for an image), with ℓ targets yᵢ ∈ ℝ^ℓ each. Every
/// full-data quantity of the library is a sum over batches read from a source, so a source need not hold all rows in
/// memory at once: <see cref="Dataset"/> does (the CSV, <c>builtin:</c> and <c>synthetic:</c> data), a
/// <see cref="ArrayFileSource"/> reads each batch from its files (NumPy .npz, IDX).
/// </summary>
/// <remarks>
/// Values are finite (a source checks them when it is opened). Reads are exact: the same rows give the same float64
/// values on every read, whatever the batch. A read returns new CPU tensors the caller owns.
/// </remarks>
public interface IDataSource
{
    /// <summary>The number of rows d.</summary>
    int Count { get; }

    /// <summary>The shape of one input row, e.g. [p] or [c, h, w]; its product is <see cref="InputDim"/>.</summary>
    IReadOnlyList<long> InputShape { get; }

    /// <summary>The values per input row p (the product of <see cref="InputShape"/>).</summary>
    int InputDim { get; }

    /// <summary>The targets per row ℓ.</summary>
    int OutputDim { get; }

    /// <summary>The names of the ℓ targets (for one-hot targets, <c>column=class</c>).</summary>
    IReadOnlyList<string> TargetNames { get; }

    /// <summary>Where the rows come from: a path, <c>builtin:NAME</c>, <c>synthetic:…</c> or <c>memory</c>.</summary>
    string Source { get; }

    /// <summary>Whether every row is held in memory (a <see cref="Dataset"/>); false for a source that reads its file per batch.</summary>
    bool Resident { get; }

    /// <summary>The largest |yᵢⱼ| over all rows.</summary>
    double MaxAbsTarget();

    /// <summary>Rows <paramref name="start"/> … <paramref name="start"/> + <paramref name="count"/> − 1: inputs count × shape and targets count × ℓ, float64.</summary>
    (Tensor Inputs, Tensor Targets) Read(long start, long count);

    /// <summary>The rows listed (indices into 0 … d − 1, in that order): inputs k × shape and targets k × ℓ, float64.</summary>
    (Tensor Inputs, Tensor Targets) ReadRows(IReadOnlyList<long> rows);

    /// <summary>
    /// All rows as a <see cref="Dataset"/> in memory, for what needs every row at once (the construction of Lemma 3.3,
    /// duplicates, the cluster's shards): the source itself when it is one, else its rows read once, priced against the
    /// memory budget of <paramref name="limits"/> before they are allocated.
    /// </summary>
    /// <exception cref="Engine.MemoryBudgetExceededException">The rows would exceed the budget.</exception>
    Dataset Load(Engine.RunLimits? limits = null);
}
