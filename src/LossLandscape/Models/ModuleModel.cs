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
/// <para>The module is evaluated in eval mode, as PyHessian does (<c>model.eval()</c> before any product): f must be one
/// function of p for L, its derivatives and every batching of the rows to agree. In training mode dropout draws a new
/// mask at each call, and batch norm normalises by the current batch's statistics (so L would depend on the batch size)
/// and moves its running statistics at every evaluation. The constructor calls <c>eval()</c> on the module, and so does
/// every <see cref="Forward"/> that finds a layer switched back to training: no evaluation changes a buffer.
/// <see cref="Mode"/> says what was switched.</para>
/// </remarks>
public sealed class ModuleModel : IDifferentiableModel
{
    private readonly nn.Module _module;
    private readonly Func<Tensor, Tensor> _call;
    private readonly Tensor[] _leaves;

    /// <summary>
    /// Wraps <paramref name="module"/>, which takes d × <paramref name="inputDim"/> (or d × <paramref name="inputShape"/>,
    /// e.g. d × c × h × w for images) and returns d × <paramref name="outputDim"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A parameter is not floating-point, or not on the CPU; there are no trainable parameters; a dimension is not positive; or the shape does not hold <paramref name="inputDim"/> values.</exception>
    public ModuleModel(nn.Module<Tensor, Tensor> module, int inputDim, int outputDim, IReadOnlyList<long>? inputShape = null)
        : this(module, module is null ? null! : module.call, inputDim, outputDim, inputShape, script: false)
    {
    }

    /// <summary>
    /// Wraps a TorchScript module loaded with <c>torch.jit.load&lt;Tensor, Tensor&gt;(path)</c> (a network saved by PyTorch's
    /// <c>torch.jit.save</c>), as the other constructor wraps an <c>nn.Module</c>: p is its parameters in
    /// <c>named_parameters()</c> order (each made to require gradients), its buffers are fixed, it is evaluated in eval mode.
    /// </summary>
    /// <exception cref="ArgumentException">As the other constructor's.</exception>
    public ModuleModel(jit.ScriptModule<Tensor, Tensor> module, int inputDim, int outputDim, IReadOnlyList<long>? inputShape = null)
        : this(module, module is null ? null! : module.call, inputDim, outputDim, inputShape, script: true)
    {
    }

    private ModuleModel(nn.Module module, Func<Tensor, Tensor> call, int inputDim, int outputDim, IReadOnlyList<long>? inputShape, bool script)
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
        // A TorchScript module's layers are all "ScriptModule" to .NET: its batch norms are found by their running statistics.
        var modeDependent = script
            ? module.named_buffers().Where(b => b.name.EndsWith(".running_mean", StringComparison.Ordinal)).Select(b => b.name[..b.name.LastIndexOf('.')]).ToArray()
            : module.named_modules().Where(m => IsModeDependent(m.module)).Select(m => m.name).ToArray();
        Mode = new ModuleMode(InTraining(module), modeDependent);
        module.eval();
        if (script)
        {
            foreach (var (_, parameter) in module.named_parameters())
            {
                parameter.requires_grad_(true); // torch.jit.load may hand them back without; p is every parameter
            }
        }
        _module = module;
        _call = call;
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
        InputShape = inputShape?.ToArray() ?? [inputDim];
        if (InputShape.Any(s => s < 1) || InputShape.Aggregate(1L, (a, b) => a * b) != inputDim)
        {
            throw new LandscapeInputException($"the input shape [{string.Join(", ", InputShape)}] does not hold {inputDim} values");
        }
    }

    /// <inheritdoc />
    public int InputDim { get; }

    /// <inheritdoc />
    public IReadOnlyList<long> InputShape { get; }

    /// <inheritdoc />
    public int OutputDim { get; }

    /// <inheritdoc />
    public int ParameterCount { get; }

    /// <inheritdoc />
    public IReadOnlyList<Tensor> Leaves => _leaves;

    /// <summary>How the module is evaluated: eval mode, and whether the constructor switched it there from training mode.</summary>
    public ModuleMode Mode { get; }

    /// <summary>Whether the module or any of its layers is in training mode.</summary>
    private static bool InTraining(nn.Module module) => module.training || module.modules().Any(m => m.training);

    /// <summary>
    /// Whether a layer computes differently in training mode: dropout (every kind) and the normalisations that keep
    /// running statistics (batch norm, instance norm). Layer norm and group norm do not depend on the mode.
    /// </summary>
    private static bool IsModeDependent(nn.Module module)
    {
        string name = module.GetType().Name;
        return name.Contains("Dropout", StringComparison.Ordinal) || name.Contains("BatchNorm", StringComparison.Ordinal) || name.Contains("InstanceNorm", StringComparison.Ordinal);
    }

    /// <inheritdoc />
    public Tensor Forward(Tensor inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (InTraining(_module))
        {
            _module.eval(); // switched back to training by the caller since: f stays the eval-mode function (class remarks)
        }
        var output = _call(inputs);
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

/// <summary>How a <see cref="ModuleModel"/> evaluates its module: always in eval mode.</summary>
/// <param name="WasTraining">Whether the module (or one of its layers) was in training mode when it was wrapped, and was switched to eval mode.</param>
/// <param name="ModeDependentLayers">The names of the layers whose output depends on the mode (dropout, batch norm, instance norm), in <c>named_modules()</c> order.</param>
public sealed record ModuleMode(bool WasTraining, IReadOnlyList<string> ModeDependentLayers)
{
    /// <summary>One line for people: the mode, and what eval mode changed.</summary>
    public string Describe() => (WasTraining, ModeDependentLayers.Count) switch
    {
        (_, 0) => "evaluated in eval mode (no dropout or batch-norm layer, so the mode changes nothing)",
        (true, _) => $"switched from training to eval mode, as PyHessian evaluates: dropout off and batch norm on its running statistics ({string.Join(", ", ModeDependentLayers)})",
        _ => $"evaluated in eval mode: dropout off and batch norm on its running statistics ({string.Join(", ", ModeDependentLayers)})",
    };
}
