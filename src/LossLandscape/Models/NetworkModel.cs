using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>
/// A <see cref="FeedforwardNetwork"/> at a point p ∈ ℝⁿ, held as one autograd leaf. This is how the
/// project's own networks enter the generic machinery (<see cref="IDifferentiableModel"/>).
/// </summary>
public sealed class NetworkModel : IDifferentiableModel, IDisposable
{
    private readonly Tensor _parameters;

    /// <summary>Wraps <paramref name="network"/> at the point <paramref name="parameters"/> (copied).</summary>
    public NetworkModel(FeedforwardNetwork network, IReadOnlyList<double> parameters)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(parameters);
        if (parameters.Count != network.ParameterCount)
        {
            throw new LandscapeInputException($"{parameters.Count} parameters given, the network has n = {network.ParameterCount}");
        }
        TorchRuntime.EnsureInitialized();
        Network = network;
        _parameters = tensor(parameters.ToArray(), dtype: float64).requires_grad_(true).DetachFromDisposeScope();
    }

    /// <summary>The network.</summary>
    public FeedforwardNetwork Network { get; }

    /// <summary>The leaf p itself (requires_grad). Change it with <see cref="ParameterVector.Set"/>.</summary>
    public Tensor Parameters => _parameters;

    /// <inheritdoc />
    public int InputDim => Network.InputDim;

    /// <inheritdoc />
    public IReadOnlyList<long> InputShape => Network.InputShape;

    /// <inheritdoc />
    public int OutputDim => Network.OutputDim;

    /// <inheritdoc />
    public int ParameterCount => Network.ParameterCount;

    /// <inheritdoc />
    public IReadOnlyList<Tensor> Leaves => [_parameters];

    /// <inheritdoc />
    public Tensor Forward(Tensor inputs) => Network.Forward(_parameters, inputs);

    /// <summary>The current point as an array.</summary>
    public double[] ToArray() => _parameters.detach().data<double>().ToArray();

    /// <inheritdoc />
    public void Dispose() => _parameters.Dispose();
}
