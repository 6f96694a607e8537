using LossLandscape.Problem;
using LossLandscape.Geometry;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Training;

/// <summary>Settings of <see cref="GradientDescent"/>.</summary>
/// <param name="LearningRate">η in p ← p − η∇L(p); default null: 1/λmax(∇²L(p₀)) (<see cref="Optimizer.InverseSharpness"/>).</param>
public sealed record GradientDescentOptions(double? LearningRate = null);

/// <summary>Full-batch gradient descent, p ← p − η∇L(p) (Cauchy 1847), ∇L summed over all d rows.</summary>
public sealed class GradientDescent(GradientDescentOptions? options = null) : Optimizer
{
    private readonly GradientDescentOptions _options = Validate(options ?? new GradientDescentOptions());
    private double? _rate;

    /// <inheritdoc/>
    public override string Name => "gd";

    /// <summary>The learning rate in use (null until the first step when chosen automatically).</summary>
    public double? LearningRate => _rate ?? _options.LearningRate;

    /// <inheritdoc/>
    public override string Describe() => $"gradient descent, η = {LearningRate:G4}{(_options.LearningRate is null ? " (1/λmax at p₀)" : "")}";

    /// <inheritdoc/>
    public override StepOutcome Step(IResidualProblem problem, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        using var scope = NewDisposeScope();
        _rate ??= _options.LearningRate ?? InverseSharpness(problem, limits);
        var (_, g) = problem.LossAndGradient();
        Evaluations++;
        if (g.abs().max().item<double>() == 0)
        {
            return new StepOutcome(true, "∇L = 0");
        }
        problem.SetPoint(problem.GetPoint().sub_(g.TimesInPlace(_rate.Value)));
        return StepOutcome.Moved;
    }

    private static GradientDescentOptions Validate(GradientDescentOptions o) =>
        o.LearningRate is { } r && !(r > 0 && double.IsFinite(r)) ? throw new LandscapeInputException(FormattableString.Invariant($"the learning rate must be a positive number, got {r}"), nameof(o)) : o;
}
