using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>
/// Any model that maps inputs to ℓ outputs through parameters p ∈ ℝⁿ held as autograd leaves: the
/// project's own networks (one leaf, p itself) or any TorchSharp module (its parameters in order).
/// The flat vector p is the concatenation of the flattened leaves; all geometry lives in ℝⁿ.
/// </summary>
public interface IDifferentiableModel
{
    /// <summary>The input dimension p.</summary>
    int InputDim { get; }

    /// <summary>
    /// The shape of one input row as <see cref="Forward"/> takes it (its product is p): [p] for a flat row, the default;
    /// [c, h, w] for a module that takes images. Rows of data are handed to the model in this shape, whatever shape the
    /// data gives them, as long as both hold p values.
    /// </summary>
    IReadOnlyList<long> InputShape => [InputDim];

    /// <summary>The number of outputs ℓ.</summary>
    int OutputDim { get; }

    /// <summary>The number of parameters n.</summary>
    int ParameterCount { get; }

    /// <summary>The leaves (requires_grad tensors) whose flattened concatenation is p.</summary>
    IReadOnlyList<Tensor> Leaves { get; }

    /// <summary>f_p(X) for raw inputs X (d × <see cref="InputShape"/>): a d × ℓ tensor in the autograd graph of the leaves.</summary>
    Tensor Forward(Tensor inputs);
}

/// <summary>Moves between the leaves of a model and the flat vector p ∈ ℝⁿ.</summary>
public static class ParameterVector
{
    /// <summary>p as a new detached float64 vector: the flattened leaves, concatenated in order.</summary>
    public static Tensor Get(IDifferentiableModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var scope = NewDisposeScope();
        // clone: with a single leaf, cat may hand back storage shared with the leaf, and p must be a snapshot.
        return Flatten(model.Leaves.Select(t => t.detach()).ToArray(), model.ParameterCount).clone().MoveToOuterDisposeScope();
    }

    /// <summary>Copies p into the leaves, without recording autograd history.</summary>
    public static void Set(IDifferentiableModel model, Tensor parameters)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.dim() != 1 || parameters.shape[0] != model.ParameterCount)
        {
            throw new ArgumentException($"parameter vector has shape [{string.Join(",", parameters.shape)}], the model has n = {model.ParameterCount}");
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long offset = 0;
        foreach (var leaf in model.Leaves)
        {
            leaf.copy_(parameters.narrow(0, offset, leaf.numel()).view(leaf.shape));
            offset += leaf.numel();
        }
    }

    /// <summary>
    /// Concatenates per-leaf tensors (gradients, say) into one vector of length n; a missing
    /// (null or undefined) entry stands for zeros of its leaf's size, as autograd returns for an unused leaf.
    /// </summary>
    public static Tensor Flatten(IReadOnlyList<Tensor?> perLeaf, IReadOnlyList<Tensor> leaves)
    {
        ArgumentNullException.ThrowIfNull(perLeaf);
        ArgumentNullException.ThrowIfNull(leaves);
        var parts = new Tensor[leaves.Count];
        for (int k = 0; k < leaves.Count; k++)
        {
            var t = perLeaf[k];
            parts[k] = t is null || t.IsInvalid ? zeros(leaves[k].numel(), dtype: leaves[k].dtype) : t.reshape(-1);
        }
        return cat(parts, 0);
    }

    private static Tensor Flatten(Tensor[] parts, int n)
    {
        var flat = cat(parts.Select(t => t.reshape(-1).to_type(float64)).ToArray(), 0);
        if (flat.shape[0] != n)
        {
            throw new InvalidOperationException($"the leaves hold {flat.shape[0]} numbers, the model declares n = {n}");
        }
        return flat;
    }
}
