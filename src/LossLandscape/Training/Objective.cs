using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Training;

/// <summary>L and ∇L at the model's current point in one forward and one backward pass, over all rows or a mini-batch.</summary>
internal static class Objective
{
    /// <summary>(L(p), ∇L(p)) over all rows, accumulated over the map's batches.</summary>
    public static (double Loss, Tensor Gradient) Evaluate(ResidualMap map)
    {
        using var scope = NewDisposeScope();
        var total = zeros(map.ParameterCount, dtype: float64);
        double loss = 0;
        var leaves = map.Model.Leaves.ToArray();
        foreach (var b in map.Batches())
        {
            using var batchScope = NewDisposeScope();
            var value = map.BatchLoss(b);
            loss += value.item<double>();
            var grads = autograd.grad([value], leaves, allow_unused: true);
            total.PlusInPlace(ParameterVector.Flatten(grads.ToArray(), map.Model.Leaves));
        }
        return (loss, total.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The unbiased mini-batch estimates (d/|B|)·Σ_{i∈B} |H_i|^a of L and (d/|B|)·∇Σ_{i∈B} |H_i|^a of ∇L over the rows
    /// <paramref name="rows"/>, so that a learning rate means the same for full-batch and mini-batch methods, and the
    /// mini-batch loss is on the scale of L.
    /// </summary>
    public static (double Loss, Tensor Gradient) MiniBatchGradient(ResidualMap map, Tensor inputs, Tensor targets, long[] rows)
    {
        using var scope = NewDisposeScope();
        var index = tensor(rows, dtype: int64);
        var h = map.Model.Forward(inputs.index_select(0, index)) - targets.index_select(0, index);
        var value = map.Exponent == 2.0 ? h.mul(h).sum() : h.abs().Power(map.Exponent).sum();
        var leaves = map.Model.Leaves.ToArray();
        var grads = autograd.grad([value], leaves, allow_unused: true);
        double scale = (double)map.Data.Count / rows.Length;
        var g = ParameterVector.Flatten(grads.ToArray(), map.Model.Leaves).TimesInPlace(scale);
        return (scale * value.item<double>(), g.MoveToOuterDisposeScope());
    }
}

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
}
