using LossLandscape.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>
/// Any TorchSharp module x ↦ f(x) ∈ ℝ^ℓ as an <see cref="IDifferentiableModel"/>: p is the
/// concatenation of its parameters in <c>parameters()</c> order, each flattened row-major.
/// </summary>
/// <remarks>
/// The library decides geometry in float64 (ranks, counts of zero eigenvalues), so the module's parameters must be
/// float64 on the CPU. A module of another floating-point type (float32, float16, bfloat16: TorchSharp's default
/// before the library sets float64, see <see cref="TorchRuntime"/>) is converted in place, exactly, with
/// <c>module.to(float64)</c>, buffers included; any other parameter type or device is refused with a one-line
/// <see cref="ArgumentException"/>.
/// </remarks>
public sealed class ModuleModel : IDifferentiableModel
{
    private readonly nn.Module<Tensor, Tensor> _module;
    private readonly Tensor[] _leaves;

    /// <summary>Wraps <paramref name="module"/>, which takes d × <paramref name="inputDim"/> and returns d × <paramref name="outputDim"/>.</summary>
    /// <exception cref="ArgumentException">A parameter is not floating-point, or not on the CPU; there are no trainable parameters; or a dimension is not positive.</exception>
    public ModuleModel(nn.Module<Tensor, Tensor> module, int inputDim, int outputDim)
    {
        ArgumentNullException.ThrowIfNull(module);
        TorchRuntime.EnsureInitialized();
        if (inputDim < 1 || outputDim < 1)
        {
            throw new LandscapeInputException($"the input and output dimensions must be positive (got {inputDim} and {outputDim})");
        }
        var parameters = module.named_parameters().ToArray();
        if (parameters.FirstOrDefault(p => p.parameter.device_type != DeviceType.CPU) is { parameter: not null } remote)
        {
            throw new LandscapeInputException($"the module's parameter '{remote.name}' is on {remote.parameter.device}; LossLandscape computes on the CPU: call module.to(torch.CPU) first");
        }
        if (parameters.FirstOrDefault(p => !is_floating_point(p.parameter.dtype)) is { parameter: not null } other)
        {
            throw new LandscapeInputException($"the module's parameter '{other.name}' is {other.parameter.dtype}; LossLandscape needs floating-point parameters (they are converted to float64)");
        }
        if (parameters.Any(p => p.parameter.dtype != ScalarType.Float64))
        {
            // Every float32, float16 and bfloat16 value is a float64 value: the conversion is exact.
            module.to(ScalarType.Float64);
        }
        _module = module;
        _leaves = module.parameters().Where(p => p.requires_grad).Cast<Tensor>().ToArray();
        if (_leaves.Length == 0)
        {
            throw new LandscapeInputException("the module has no trainable parameters");
        }
        long n = _leaves.Sum(p => p.numel());
        if (n > int.MaxValue)
        {
            throw new LandscapeInputException("the module has more than 2³¹ − 1 parameters");
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
