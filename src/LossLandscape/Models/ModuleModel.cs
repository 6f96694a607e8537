using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>
/// Any TorchSharp module x ↦ f(x) ∈ ℝ^ℓ as an <see cref="IDifferentiableModel"/>: p is the
/// concatenation of its parameters in <c>parameters()</c> order, each flattened row-major.
/// </summary>
public sealed class ModuleModel : IDifferentiableModel
{
    private readonly nn.Module<Tensor, Tensor> _module;
    private readonly Tensor[] _leaves;

    /// <summary>Wraps <paramref name="module"/>, which takes d × <paramref name="inputDim"/> and returns d × <paramref name="outputDim"/>.</summary>
    public ModuleModel(nn.Module<Tensor, Tensor> module, int inputDim, int outputDim)
    {
        ArgumentNullException.ThrowIfNull(module);
        TorchRuntime.EnsureInitialized();
        _module = module;
        _leaves = module.parameters().Where(p => p.requires_grad).Cast<Tensor>().ToArray();
        if (_leaves.Length == 0)
        {
            throw new ArgumentException("the module has no trainable parameters");
        }
        long n = _leaves.Sum(p => p.numel());
        if (n > int.MaxValue)
        {
            throw new ArgumentException("the module has more than 2³¹ − 1 parameters");
        }
        InputDim = inputDim;
        OutputDim = outputDim;
        ParameterCount = (int)n;
    }

    /// <inheritdoc />
    public int InputDim { get; }

    /// <inheritdoc />
    public int OutputDim { get; }

    /// <inheritdoc />
    public int ParameterCount { get; }

    /// <inheritdoc />
    public IReadOnlyList<Tensor> Leaves => _leaves;

    /// <inheritdoc />
    public Tensor Forward(Tensor inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var output = _module.call(inputs);
        if (output.dim() == 1 && OutputDim == 1)
        {
            output = output.unsqueeze(1);
        }
        if (output.dim() != 2 || output.shape[1] != OutputDim)
        {
            throw new InvalidOperationException($"the module returned shape [{string.Join(",", output.shape)}], expected [d,{OutputDim}]");
        }
        return output;
    }
}
