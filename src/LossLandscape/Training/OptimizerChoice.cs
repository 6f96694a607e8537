namespace LossLandscape.Training;

/// <summary>Which setting of an <see cref="OptimizerChoice"/> a refusal is about (the CLI names its option for it).</summary>
public enum OptimizerSetting
{
    /// <summary>The optimizer's name.</summary>
    Name,

    /// <summary>The learning rate η (gd, sgd) or α (adam).</summary>
    LearningRate,

    /// <summary>Rows per mini-batch (sgd, adam).</summary>
    BatchSize,

    /// <summary>The momentum μ (sgd).</summary>
    Momentum,
}

/// <summary>A refused <see cref="OptimizerChoice"/>: the message, and the setting it is about as data.</summary>
public sealed class OptimizerChoiceException(OptimizerSetting setting, string message, bool notApplicable = false) : Exception(message)
{
    /// <summary>The setting the refusal is about.</summary>
    public OptimizerSetting Setting { get; } = setting;

    /// <summary>Whether the setting was given to a method that does not take it (rather than given a value out of range).</summary>
    public bool NotApplicable { get; } = notApplicable;
}

/// <summary>
/// The library's one choice of optimizer by name, with the defaults of each in one place: the CLI's <c>--optimizer</c>,
/// <c>--lr</c>, <c>--batch-size</c> and <c>--momentum</c> and a C# caller build the same optimizer from it.
/// </summary>
/// <param name="Name">One of <see cref="Names"/>.</param>
/// <param name="LearningRate">
/// η or α; null for each method's default: gd 1/λmax(∇²L(p₀)), sgd (1 − μ)/λmax (<see cref="Optimizer.InverseSharpness"/>),
/// adam <see cref="AdamOptions"/>' 1e−3. Not taken by lbfgs and gauss-newton (their steps come from a line search or a solve).
/// </param>
/// <param name="BatchSize">Rows per mini-batch; null for sgd's <see cref="SgdOptions"/> default 32 and adam's full batch. Only sgd and adam.</param>
/// <param name="Momentum">μ; null for <see cref="SgdOptions"/>' 0.9. Only sgd.</param>
/// <param name="Seed">The seed of the mini-batches' draws.</param>
public sealed record OptimizerChoice(string Name, double? LearningRate = null, int? BatchSize = null, double? Momentum = null, int Seed = 0)
{
    /// <summary>The names, as the command line spells them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["gd", "sgd", "adam", "lbfgs", "gauss-newton"];

    /// <summary>The default: Adam, the common first choice (Kingma and Ba 2015).</summary>
    public const string DefaultName = "adam";

    /// <summary>Refuses a name that is not one of <see cref="Names"/>, a value out of range, and a setting the method does not take.</summary>
    /// <exception cref="OptimizerChoiceException">The setting refused, and why.</exception>
    public void Validate()
    {
        if (!Names.Contains(Name))
        {
            throw new OptimizerChoiceException(OptimizerSetting.Name, $"'{Name}' is not one of {string.Join(", ", Names)}");
        }
        if (LearningRate is { } r && !(r > 0 && double.IsFinite(r)))
        {
            throw new OptimizerChoiceException(OptimizerSetting.LearningRate, FormattableString.Invariant($"{r} is not a positive number"));
        }
        if (BatchSize is < 1)
        {
            throw new OptimizerChoiceException(OptimizerSetting.BatchSize, $"{BatchSize} is not a positive number of rows");
        }
        if (Momentum is { } m && !(m >= 0 && m < 1))
        {
            throw new OptimizerChoiceException(OptimizerSetting.Momentum, FormattableString.Invariant($"{m} is not in [0, 1)"));
        }
        var taken = Name switch
        {
            "gd" => new[] { OptimizerSetting.LearningRate },
            "sgd" => [OptimizerSetting.LearningRate, OptimizerSetting.BatchSize, OptimizerSetting.Momentum],
            "adam" => [OptimizerSetting.LearningRate, OptimizerSetting.BatchSize],
            _ => [],
        };
        foreach (var (setting, given) in new[] { (OptimizerSetting.LearningRate, LearningRate is not null), (OptimizerSetting.BatchSize, BatchSize is not null), (OptimizerSetting.Momentum, Momentum is not null) })
        {
            if (given && !taken.Contains(setting))
            {
                throw new OptimizerChoiceException(setting, $"does not apply to the optimizer {Name}", notApplicable: true);
            }
        }
    }

    /// <summary>A fresh optimizer (it keeps state: the caller disposes it), after <see cref="Validate"/>.</summary>
    /// <exception cref="OptimizerChoiceException">The choice is refused.</exception>
    public Optimizer Create()
    {
        Validate();
        var sgd = new SgdOptions();
        var adam = new AdamOptions();
        return Name switch
        {
            "gd" => new GradientDescent(new GradientDescentOptions(LearningRate)),
            "sgd" => new StochasticGradientDescent(sgd with { LearningRate = LearningRate, BatchSize = BatchSize ?? sgd.BatchSize, Momentum = Momentum ?? sgd.Momentum, Seed = Seed }),
            "adam" => new Adam(adam with { LearningRate = LearningRate ?? adam.LearningRate, BatchSize = BatchSize, Seed = Seed }),
            "lbfgs" => new Lbfgs(),
            _ => new GaussNewton(),
        };
    }
}
