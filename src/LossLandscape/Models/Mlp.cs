using LossLandscape.Engine;
using LossLandscape.Data;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>A hidden layer of an <see cref="Mlp"/>: its width and activation σ.</summary>
/// <param name="Width">The number of units.</param>
/// <param name="Activation">σ, applied elementwise.</param>
public sealed record HiddenLayer(int Width, Activation Activation);

/// <summary>Where one affine layer's W (out × in, row-major) and b (out) sit in the flat vector p.</summary>
/// <param name="In">Fan-in.</param>
/// <param name="Out">Fan-out.</param>
/// <param name="WeightOffset">Index of W₁₁ in p.</param>
/// <param name="BiasOffset">Index of b₁ in p (right after W).</param>
/// <param name="Activation">σ for a hidden layer; <c>null</c> for the linear output layer.</param>
public sealed record LayerSlice(int In, int Out, int WeightOffset, int BiasOffset, Activation? Activation)
{
    /// <summary>The number of parameters of the layer, out·in + out.</summary>
    public int Count => (Out * In) + Out;
}

/// <summary>
/// A layered feedforward network: hidden layers a_k = σ_k(W_k a_{k−1} + b_k), linear outputs
/// f = W_{T+1} a_T + b_{T+1}, with a₀ = (x − shift)/scale. T = 0 hidden layers is the linear model f(x) = W a₀ + b
/// (<c>init --hidden none</c>).
/// </summary>
/// <remarks>
/// The flat layout of p is that of the model file <c>losslandscape.mlp/1</c>: layer by layer, first
/// hidden layer first, each layer W (out × in, row-major) then b (out). So
/// n = Σ_k (h_k·h_{k−1} + h_k) with h₀ = p and h_{T+1} = ℓ.
/// </remarks>
public sealed class Mlp : FeedforwardNetwork
{
    private readonly HiddenLayer[] _hidden;
    private readonly LayerSlice[] _layers;

    /// <summary>Creates an MLP with the given input dimension, hidden layers and ℓ linear outputs.</summary>
    public Mlp(int inputDim, IReadOnlyList<HiddenLayer> hidden, int outputDim)
    {
        if (inputDim < 1)
        {
            throw new LandscapeInputException("an MLP needs at least one input", nameof(inputDim));
        }
        if (outputDim < 1)
        {
            throw new LandscapeInputException("an MLP needs at least one output", nameof(outputDim));
        }
        ArgumentNullException.ThrowIfNull(hidden);
        _hidden = hidden.ToArray();
        foreach (var layer in _hidden)
        {
            if (layer.Width < 1)
            {
                throw new LandscapeInputException($"hidden layer width must be positive, got {layer.Width}", nameof(hidden));
            }
        }
        InputDim = inputDim;
        OutputDim = outputDim;
        var layers = new List<LayerSlice>();
        int fanIn = inputDim;
        long offset = 0;
        foreach (var layer in _hidden.Select(h => (h.Width, (Activation?)h.Activation)).Append((outputDim, null)))
        {
            long weights = (long)layer.Width * fanIn;
            if (offset + weights + layer.Width > int.MaxValue)
            {
                throw new LandscapeInputException("the network has more than 2³¹ − 1 parameters");
            }
            layers.Add(new LayerSlice(fanIn, layer.Width, (int)offset, (int)(offset + weights), layer.Item2));
            offset += weights + layer.Width;
            fanIn = layer.Width;
        }
        _layers = layers.ToArray();
        ParameterCount = (int)offset;
    }

    /// <inheritdoc />
    public override int InputDim { get; }

    /// <inheritdoc />
    public override int OutputDim { get; }

    /// <inheritdoc />
    public override int ParameterCount { get; }

    /// <summary>The hidden layers, first first.</summary>
    public IReadOnlyList<HiddenLayer> Hidden => _hidden;

    /// <summary>The affine layers (hidden layers, then the output layer) and their place in p.</summary>
    public IReadOnlyList<LayerSlice> Layers => _layers;

    /// <inheritdoc />
    public override IReadOnlyList<Activation> DistinctActivations =>
        _hidden.Select(h => h.Activation).Distinct().ToArray();

    /// <summary>A copy of this network with another input scaling.</summary>
    public Mlp WithScaling(InputScaling? scaling) => new(InputDim, _hidden, OutputDim) { Scaling = scaling };

    /// <summary>Copies of the n parameters a run holds at once: the point, the gradient, the best point, Adam's two moments and the step.</summary>
    /// <remarks>Counted from <see cref="Training.Adam"/>, the optimizer with the most per-parameter state; chosen as the bound for every optimizer.</remarks>
    public const int ParameterCopies = 6;

    /// <summary>Copies of the rows × (Σh + ℓ) activations a forward and reverse pass hold: z, σ(z), the saved σ′ and the back-propagated δ.</summary>
    public const int ActivationCopies = 4;

    /// <summary>
    /// The bytes an MLP p → h₁ → … → h_T → ℓ holds while it is initialised, evaluated or trained on
    /// <paramref name="rows"/> rows at once: 8·(<see cref="ParameterCopies"/>·n + <see cref="ActivationCopies"/>·rows·(Σh + ℓ)),
    /// with n = Σ (fan-in + 1)·width, computed in floating point so that no width overflows it (saturating at <see cref="long.MaxValue"/>).
    /// </summary>
    public static long RequiredBytes(int inputDim, IReadOnlyList<int> widths, int outputDim, long rows)
    {
        ArgumentNullException.ThrowIfNull(widths);
        double n = 0, units = 0;
        double fanIn = inputDim;
        foreach (double width in widths.Select(w => (double)w).Append(outputDim))
        {
            n += (fanIn + 1) * width;
            units += width;
            fanIn = width;
        }
        double bytes = sizeof(double) * ((ParameterCopies * n) + (ActivationCopies * (double)rows * units));
        return bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
    }

    /// <summary>
    /// Refuses, before anything is allocated, an MLP whose <see cref="RequiredBytes"/> exceed the budget of <paramref name="limits"/>
    /// (<see cref="RunLimits.Require"/>), naming smaller widths and fewer rows as the remedies (<see cref="BudgetRemedy"/>).
    /// </summary>
    /// <exception cref="MemoryBudgetExceededException">The network and its activations exceed the budget.</exception>
    public static void RequireFits(int inputDim, IReadOnlyList<int> widths, int outputDim, long rows, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(widths);
        (limits ?? RunLimits.Default).Require($"an MLP {inputDim} → {string.Join(" → ", widths)} → {outputDim} on {rows} rows (the parameters ×{ParameterCopies}, the activations ×{ActivationCopies})",
            RequiredBytes(inputDim, widths, outputDim, rows), "use smaller widths or fewer rows", BudgetRemedy.Widths | BudgetRemedy.Rows);
    }

    /// <summary>
    /// A random initial point: W_k ~ N(0, 2/fan_in) for hidden layers (He et al. 2015, the usual
    /// choice for rectified units), W ~ N(0, 1/fan_in) for the linear output layer, b = 0.
    /// Deterministic for a seed (System.Random with Box–Muller, independent of libtorch's generator).
    /// </summary>
    public double[] InitialParameters(int seed)
    {
        var rng = new Random(seed);
        var p = new double[ParameterCount];
        foreach (var layer in _layers)
        {
            double std = Math.Sqrt((layer.Activation is null ? 1.0 : 2.0) / layer.In);
            for (int k = 0; k < layer.Out * layer.In; k++)
            {
                p[layer.WeightOffset + k] = std * SeededNormal.Next(rng);
            }
        }
        return p;
    }

    /// <summary>Views W (out × in) of <paramref name="layer"/> inside p.</summary>
    public static Tensor Weight(Tensor parameters, LayerSlice layer) =>
        parameters.narrow(0, layer.WeightOffset, (long)layer.Out * layer.In).view(layer.Out, layer.In);

    /// <summary>Views b (out) of <paramref name="layer"/> inside p.</summary>
    public static Tensor Bias(Tensor parameters, LayerSlice layer) =>
        parameters.narrow(0, layer.BiasOffset, layer.Out);

    /// <inheritdoc />
    protected override Tensor ForwardScaled(Tensor parameters, Tensor scaledInputs)
    {
        var a = scaledInputs;
        foreach (var layer in _layers)
        {
            var z = nn.functional.linear(a, Weight(parameters, layer), Bias(parameters, layer));
            a = layer.Activation is null ? z : layer.Activation.Apply(z);
        }
        return a;
    }

    /// <inheritdoc />
    /// <remarks>Every parameter of an MLP is its own column block (W_k, then b_k), and the sweep assigns each block.</remarks>
    protected override bool JacobianWritesEveryEntry => true;

    /// <summary>
    /// Per-sample gradients from <see cref="ScaledFactors"/>: ∂f_j(xᵢ)/∂W_k = δ_k[i,j] a_{k−1}[i]ᵀ (an outer
    /// product), ∂f_j(xᵢ)/∂b_k = δ_k[i,j].
    /// </summary>
    protected override void AccumulateJacobian(Tensor parameters, Tensor scaledInputs, Tensor jacobian)
    {
        long d = scaledInputs.shape[0];
        int l = OutputDim;
        var factors = ScaledFactors(parameters, scaledInputs);
        for (int k = 0; k < _layers.Length; k++)
        {
            var layer = _layers[k];
            var (input, delta) = factors[k];
            // Weight block, viewed as (d, ℓ, out, in): the outer product δ ⊗ a, written in place.
            var block = jacobian.narrow(1, layer.WeightOffset, (long)layer.Out * layer.In).view(d, l, layer.Out, layer.In);
            block.copy_(input.unsqueeze(1).unsqueeze(1).expand(d, l, layer.Out, layer.In));
            block.mul_(delta.unsqueeze(-1));
            jacobian.narrow(1, layer.BiasOffset, layer.Out).view(d, l, layer.Out).copy_(delta);
        }
    }

    /// <summary>
    /// The per-layer factors of the per-sample gradients, for raw inputs: for layer k, the layer's input
    /// a_{k−1} (d × in) and the back-propagated δ_k (d × ℓ × out), so that ∂f_j(xᵢ)/∂W_k = δ_k[i,j] a_{k−1}[i]ᵀ
    /// and ∂f_j(xᵢ)/∂b_k = δ_k[i,j]. Computed without autograd.
    /// </summary>
    public IReadOnlyList<(Tensor Input, Tensor Delta)> JacobianFactors(Tensor parameters, Tensor inputs)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var factors = ScaledFactors(parameters.detach(), ScaleInputs(inputs));
        foreach (var (a, delta) in factors)
        {
            a.MoveToOuterDisposeScope();
            delta.MoveToOuterDisposeScope();
        }
        return factors;
    }

    /// <summary>
    /// The input a_{k−1} of layer <paramref name="layer"/> (for the output layer, the last hidden activations) at raw
    /// inputs: the forward pass up to that layer only, without autograd. Where only activations are needed this avoids the
    /// back-propagated δ that <see cref="JacobianFactors"/> also forms, d × ℓ × out per layer (2.6 GB for the first layer
    /// of a digits network with h = 10·d, one-hot).
    /// </summary>
    public Tensor LayerInput(Tensor parameters, Tensor inputs, int layer)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layer);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(layer, _layers.Length);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var p = parameters.detach();
        var a = ScaleInputs(inputs);
        for (int k = 0; k < layer; k++)
        {
            var z = nn.functional.linear(a, Weight(p, _layers[k]), Bias(p, _layers[k]));
            a = _layers[k].Activation is { } sigma ? sigma.Apply(z) : z;
        }
        return a.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One forward pass and one batched reverse sweep carrying all ℓ output directions at once:
    /// δ_{T+1} = e_j, δ_k = (δ_{k+1} W_{k+1}) ⊙ σ_k′(z_k).
    /// </summary>
    private (Tensor Input, Tensor Delta)[] ScaledFactors(Tensor parameters, Tensor scaledInputs)
    {
        long d = scaledInputs.shape[0];
        int l = OutputDim;
        var inputsOf = new Tensor[_layers.Length];
        var preActivations = new Tensor[_layers.Length];
        var a = scaledInputs;
        for (int k = 0; k < _layers.Length; k++)
        {
            inputsOf[k] = a;
            var z = nn.functional.linear(a, Weight(parameters, _layers[k]), Bias(parameters, _layers[k]));
            preActivations[k] = z;
            a = _layers[k].Activation is { } sigma ? sigma.Apply(z) : z;
        }
        var factors = new (Tensor, Tensor)[_layers.Length];
        // δ for the output layer: the identity on the ℓ outputs, for every sample. Shape (d, ℓ, ℓ).
        var delta = eye(l, dtype: parameters.dtype).unsqueeze(0).expand(d, l, l);
        for (int k = _layers.Length - 1; k >= 0; k--)
        {
            factors[k] = (inputsOf[k], delta);
            if (k > 0)
            {
                var below = _layers[k - 1];
                delta = delta.matmul(Weight(parameters, _layers[k])).mul_(below.Activation!.Derivative(preActivations[k - 1]).unsqueeze(1));
            }
        }
        return factors;
    }
}
