namespace LossLandscape.Models.Activations;

/// <summary>The activations known by name, for model files and the command line.</summary>
public static class ActivationRegistry
{
    private static readonly Activation[] Known =
    [
        new SmooLU(), new Relu(), new Softplus(), new Tanh(), new Sigmoid(), new RectifiedTanh(), new RectifiedSigmoid(),
    ];

    /// <summary>Every activation, in a fixed order.</summary>
    public static IReadOnlyList<Activation> All => Known;

    /// <summary>Every name: smoolu, relu, softplus, tanh, sigmoid, rectified-tanh, rectified-sigmoid.</summary>
    public static IReadOnlyList<string> Names { get; } = Known.Select(a => a.Name).ToArray();

    /// <summary>The default activation of the paper, smooLU.</summary>
    public static Activation Default => Known[0];

    /// <summary>Looks an activation up by name (case-insensitive).</summary>
    public static bool TryGet(string? name, out Activation? activation)
    {
        activation = Known.FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.OrdinalIgnoreCase));
        return activation is not null;
    }

    /// <summary>The activation with this name; <see cref="ArgumentException"/> naming the known ones otherwise.</summary>
    public static Activation Get(string name) =>
        TryGet(name, out var a) ? a! : throw new LandscapeInputException($"unknown activation '{name}'; expected one of: {string.Join(", ", Names)}");
}
