using LossLandscape.Problem;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="StochasticGradientDescent"/>.</summary>
/// <param name="LearningRate">
/// η; default null: (1 − μ)/λmax(∇²L(p₀)) (<see cref="Optimizer.InverseSharpness"/>), so that the heavy ball's effective step
/// η/(1 − μ) is gradient descent's 1/λmax (the mini-batch estimate (d/|B|)∇L_B is noisier and sharper than ∇L).
/// </param>
/// <param name="BatchSize">Rows per mini-batch B; default 32 (Bengio, "Practical recommendations for gradient-based training", 2012, §3.1).</param>
/// <param name="Momentum">μ; default 0.9 (Sutskever, Martens, Dahl &amp; Hinton 2013).</param>
/// <param name="Nesterov">Nesterov's accelerated form instead of the heavy ball; default false.</param>
/// <param name="Seed">Seed of the shuffling; default 0.</param>
public sealed record SgdOptions(double? LearningRate = null, int BatchSize = 32, double Momentum = 0.9, bool Nesterov = false, int Seed = 0);

/// <summary>
/// Mini-batch SGD with momentum in PyTorch's form: g = (d/|B|)∇Σ_{i∈B}|H_i|^a (an unbiased estimate of ∇L),
/// v ← μv + g, p ← p − ηv (Nesterov: p ← p − η(g + μv)). Each epoch visits the rows in a fresh seeded permutation.
/// </summary>
/// <remarks>Polyak 1964 (heavy ball); Robbins &amp; Monro 1951; Sutskever et al. 2013 (momentum in deep learning).</remarks>
public sealed class StochasticGradientDescent(SgdOptions? options = null) : Optimizer
{
    private readonly SgdOptions _options = Validate(options ?? new SgdOptions());
    private MiniBatches? _batches;
    private Tensor? _velocity;
    private double? _rate;

    /// <inheritdoc/>
    public override string Name => "sgd";

    /// <summary>The learning rate in use (null until the first step when chosen automatically).</summary>
    public double? LearningRate => _rate ?? _options.LearningRate;

    /// <inheritdoc/>
    public override string Describe() =>
        $"SGD, η = {LearningRate:G4}{(_options.LearningRate is null ? " ((1 − μ)/λmax at p₀)" : "")}, B = {_options.BatchSize}, momentum {_options.Momentum}{(_options.Nesterov ? " (Nesterov)" : "")}, seed {_options.Seed}";

    /// <inheritdoc/>
    public override StepOutcome Step(IResidualProblem map, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        _rate ??= _options.LearningRate ?? (1 - _options.Momentum) * InverseSharpness(map, limits);
        _batches ??= new MiniBatches(map.Rows, _options.BatchSize, _options.Seed);
        using var scope = NewDisposeScope();
        var (batchLoss, g) = _batches.NextEstimate(map);
        Evaluations++;
        if (_velocity is null)
        {
            _velocity = g.clone().DetachFromDisposeScope();
        }
        else
        {
            _velocity.TimesInPlace(_options.Momentum).PlusInPlace(g);
        }
        var direction = _options.Nesterov ? ScalarArithmetic.WithScalar(_options.Momentum, momentum => g.add(_velocity, momentum)) : _velocity;
        map.SetPoint(map.GetPoint().sub_(direction.Times(_rate.Value)));
        return new StepOutcome(false, BatchLoss: batchLoss);
    }

    /// <inheritdoc/>
    public override int? RowsPerStep(int rows) => Math.Min(_options.BatchSize, rows);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        _velocity?.Dispose();
    }

    private static SgdOptions Validate(SgdOptions o)
    {
        if (o.LearningRate is { } r && !(r > 0 && double.IsFinite(r)))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the learning rate must be a positive number, got {r}"), nameof(o));
        }
        if (o.BatchSize < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the batch size must be positive, got {o.BatchSize}"), nameof(o));
        }
        if (!(o.Momentum >= 0 && o.Momentum < 1))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the momentum must lie in [0, 1), got {o.Momentum}"), nameof(o));
        }
        return o;
    }
}
