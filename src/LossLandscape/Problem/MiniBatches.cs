using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Problem;

/// <summary>Seeded mini-batches: each epoch a fresh Fisher–Yates permutation of the rows, cut into batches of B (the last may be smaller).</summary>
internal sealed class MiniBatches
{
    private readonly Random _rng;
    private readonly int _count;
    private readonly int _size;
    private int[] _order = [];
    private int _position;

    public MiniBatches(int count, int size, int seed)
    {
        _count = count;
        _size = Math.Min(size, count);
        _rng = new Random(seed);
        _position = count;
    }

    public long[] Next()
    {
        if (_position >= _count)
        {
            _order = Enumerable.Range(0, _count).ToArray();
            _rng.Shuffle(_order);
            _position = 0;
        }
        int take = Math.Min(_size, _count - _position);
        var rows = new long[take];
        for (int k = 0; k < take; k++)
        {
            rows[k] = _order[_position + k];
        }
        _position += take;
        return rows;
    }

    /// <summary>
    /// The next batch's unbiased estimates of L and ∇L: (d/|B|)·Σ_{i∈B}|hᵢ|^a and its gradient, from
    /// <see cref="IResidualProblem.RowsLossAndGradient"/>, so the same seed draws the same rows on every backend.
    /// </summary>
    public (double Loss, Tensor Gradient) NextEstimate(IResidualProblem problem)
    {
        var rows = Next();
        using var scope = NewDisposeScope();
        var (loss, gradient) = problem.RowsLossAndGradient(rows);
        double scale = (double)_count / rows.Length;
        return (scale * loss, gradient.TimesInPlace(scale).MoveToOuterDisposeScope());
    }
}
