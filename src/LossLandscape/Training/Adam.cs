using LossLandscape.Problem;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="Adam"/>; the defaults are those of Kingma &amp; Ba 2015, Algorithm 1.</summary>
/// <param name="LearningRate">α; default 1e−3.</param>
/// <param name="Beta1">β₁, decay of the first moment; default 0.9.</param>
/// <param name="Beta2">β₂, decay of the second moment; default 0.999.</param>
/// <param name="Epsilon">ε in the denominator; default 1e−8.</param>
/// <param name="BatchSize">Rows per mini-batch; default null: full batch (the exact ∇L).</param>
/// <param name="Seed">Seed of the shuffling when mini-batched; default 0.</param>
public sealed record AdamOptions(double LearningRate = 1e-3, double Beta1 = 0.9, double Beta2 = 0.999, double Epsilon = 1e-8, int? BatchSize = null, int Seed = 0);

/// <summary>
/// Adam (Kingma &amp; Ba, "Adam: A method for stochastic optimization", ICLR 2015, Algorithm 1):
/// m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), p ← p − α m̂/(√v̂ + ε).
/// </summary>
public sealed class Adam(AdamOptions? options = null) : Optimizer
{
    private readonly AdamOptions _options = Validate(options ?? new AdamOptions());
    private MiniBatches? _batches;
    private Tensor? _m;
    private Tensor? _v;
    private int _t;

    /// <inheritdoc/>
    public override string Name => "adam";

    /// <inheritdoc/>
    public override string Describe() =>
        $"Adam, α = {_options.LearningRate:G4}, β₁ = {_options.Beta1}, β₂ = {_options.Beta2}, ε = {_options.Epsilon:G3}, {(_options.BatchSize is { } b ? $"B = {b}, seed {_options.Seed}" : "full batch")}";

    /// <inheritdoc/>
    public override StepOutcome Step(IResidualProblem map, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        Tensor g;
        double? batchLoss = null;
        if (RowsPerStep(map.Rows) is { } size)
        {
            _batches ??= new MiniBatches(map.Rows, size, _options.Seed);
            (batchLoss, g) = _batches.NextEstimate(map);
        }
        else
        {
            g = map.Gradient();
        }
        Evaluations++;
        _t++;
        _m ??= zeros_like(g).DetachFromDisposeScope();
        _v ??= zeros_like(g).DetachFromDisposeScope();
        _m.TimesInPlace(_options.Beta1).PlusScaledInPlace(g, 1 - _options.Beta1);
        ScalarArithmetic.WithScalar(1 - _options.Beta2, value => _v.TimesInPlace(_options.Beta2).addcmul_(g, g, value: value));
        double c1 = 1 - Math.Pow(_options.Beta1, _t), c2 = 1 - Math.Pow(_options.Beta2, _t);
        var step = _m.Over(c1).div_(_v.Over(c2).sqrt_().PlusInPlace(_options.Epsilon)).TimesInPlace(_options.LearningRate);
        map.SetPoint(map.GetPoint().sub_(step));
        return new StepOutcome(false, BatchLoss: batchLoss);
    }

    /// <inheritdoc/>
    public override int? RowsPerStep(int rows) => _options.BatchSize is { } size && size < rows ? size : null;

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        _m?.Dispose();
        _v?.Dispose();
    }

    private static AdamOptions Validate(AdamOptions o)
    {
        if (!(o.LearningRate > 0 && double.IsFinite(o.LearningRate)))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the learning rate must be a positive number, got {o.LearningRate}"), nameof(o));
        }
        if (!(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1))
        {
            throw new LandscapeInputException("β₁ and β₂ must lie in [0, 1)", nameof(o));
        }
        if (o.BatchSize is < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the batch size must be positive, got {o.BatchSize}"), nameof(o));
        }
        return o;
    }
}
