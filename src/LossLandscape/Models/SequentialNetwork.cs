using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>
/// A layered network beyond MLPs, the model file <c>losslandscape.seq/1</c>: an input shape ([C, H, W] for images, [p] for
/// flat rows) and a list of layers — conv2d, max and average pooling, batch norm in eval mode, flatten, linear and every
/// activation — evaluated as <c>torch.nn.Sequential</c> of the same layers evaluates them, on views of one flat float64
/// vector p.
/// </summary>
/// <remarks>
/// <para>p holds the layers' parameters in order, each layer's as PyTorch's <c>named_parameters()</c> lists them: conv2d
/// weight [out, in, k, k] then bias [out]; linear weight [out, in] then bias [out]; batch norm γ [C] then β [C]. So p is
/// the concatenation of a <c>torch.nn.Sequential</c>'s flattened parameters, and the running statistics of batch norm are
/// fixed values of the model (its buffers), not parameters.</para>
/// <para>The forward pass uses torch's own operations on views of p, so autograd gives ∇L and Hessian-vector products by
/// double backward; the Jacobian (<see cref="FeedforwardNetwork.Jacobian"/>) is one forward pass and one reverse sweep
/// carrying all ℓ output directions of every row at once, with the per-sample weight gradients of a convolution formed from
/// the unfolded input (im2col): ∂f_j(xᵢ)/∂W = δ_{ij} · unfold(xᵢ)ᵀ.</para>
/// <para>Its outputs are those of the last layer, whose output must be flat ([ℓ]); a rectified activation there makes
/// outputs that are not linear, unlike the paper's networks, and is allowed.</para>
/// </remarks>
public sealed class SequentialNetwork : FeedforwardNetwork
{
    private readonly long[] _inputShape;
    private readonly SequentialSlice[] _slices;
    private readonly double[]?[] _inverseStd;

    /// <summary>
    /// Places <paramref name="layers"/> on rows of shape <paramref name="inputShape"/>; a layer that does not fit the shape it
    /// receives is refused with one line naming its position and the problem.
    /// </summary>
    /// <exception cref="LandscapeInputException">
    /// The input shape is not [C, H, W] or [p] with positive sizes; there are no layers; a size is not positive; a conv2d or pool
    /// receives a flat input or a window larger than its (padded) input; a linear layer receives an image (flatten first); a batch
    /// norm's statistics do not match its channels or are not finite (σ² ≥ 0, ε &gt; 0); the last output is not flat; or the
    /// network has no parameters or more than 2³¹ − 1.
    /// </exception>
    public SequentialNetwork(IReadOnlyList<long> inputShape, IReadOnlyList<SequentialLayer> layers)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(layers);
        _inputShape = inputShape.ToArray();
        if (_inputShape.Length is not (1 or 3) || _inputShape.Any(s => s < 1))
        {
            throw new LandscapeInputException($"the input shape [{Shape(_inputShape)}] is neither [C, H, W] nor [p] with positive sizes");
        }
        long inputDim = _inputShape.Aggregate(1L, (a, b) => a * b);
        if (inputDim > int.MaxValue)
        {
            throw new LandscapeInputException($"the input shape [{Shape(_inputShape)}] holds more than 2³¹ − 1 values");
        }
        if (layers.Count == 0)
        {
            throw new LandscapeInputException("the network has no layers");
        }
        InputDim = (int)inputDim;
        _slices = new SequentialSlice[layers.Count];
        _inverseStd = new double[]?[layers.Count];
        var shape = _inputShape;
        long offset = 0;
        for (int k = 0; k < layers.Count; k++)
        {
            var layer = layers[k] ?? throw new LandscapeInputException($"layer {k + 1} of {layers.Count} is missing");
            string where = $"layer {k + 1} of {layers.Count} ({layer.Type})";
            var (resolved, output, count) = Place(layer, shape, where);
            if (resolved is BatchNormLayer bn)
            {
                // 1/√(σ² + ε) per channel, in float64 as torch computes it for a float64 batch norm.
                _inverseStd[k] = bn.RunningVar!.Select(v => 1.0 / Math.Sqrt(v + bn.Eps)).ToArray();
            }
            if (offset + count > int.MaxValue)
            {
                throw new LandscapeInputException("the network has more than 2³¹ − 1 parameters");
            }
            _slices[k] = new SequentialSlice(k, resolved, shape, output, (int)offset, (int)count);
            offset += count;
            shape = output;
        }
        if (shape.Length != 1)
        {
            throw new LandscapeInputException($"the output of the last layer has shape [{Shape(shape)}]; the outputs must be flat: end with flatten or linear");
        }
        if (offset == 0)
        {
            throw new LandscapeInputException("the network has no parameters: add a conv2d or linear layer");
        }
        OutputDim = checked((int)shape[0]);
        ParameterCount = (int)offset;
    }

    /// <inheritdoc />
    public override int InputDim { get; }

    /// <inheritdoc />
    public override IReadOnlyList<long> InputShape => _inputShape;

    /// <inheritdoc />
    public override int OutputDim { get; }

    /// <inheritdoc />
    public override int ParameterCount { get; }

    /// <summary>The layers placed, first first: shapes and parameter offsets (batch norms with their statistics filled in).</summary>
    public IReadOnlyList<SequentialSlice> Layers => _slices;

    /// <inheritdoc />
    public override IReadOnlyList<Activation> DistinctActivations =>
        _slices.Select(s => s.Layer).OfType<ActivationLayer>().Select(a => a.Activation).Distinct().ToArray();

    /// <summary>The values a row holds after every layer, summed: the activations one row's forward pass keeps.</summary>
    public long Units => _slices.Sum(s => s.OutputSize);

    /// <summary>The architecture in the syntax of <see cref="ArchitectureSpec"/> (every stride and padding written out).</summary>
    public string Spec => string.Join(",", _slices.Select(s => s.Layer.Spec));

    /// <summary>A copy of this network with another input scaling.</summary>
    public SequentialNetwork WithScaling(InputScaling? scaling)
    {
        scaling?.Validate(InputDim);
        return new(_inputShape, _slices.Select(s => s.Layer).ToArray()) { Scaling = scaling };
    }

    /// <summary>
    /// The bytes the network holds while it is initialised, evaluated or trained on <paramref name="rows"/> rows at once:
    /// 8·(<see cref="Mlp.ParameterCopies"/>·n + <see cref="Mlp.ActivationCopies"/>·rows·(p + <see cref="Units"/>)), the MLP's
    /// bound with every layer's output counted as units (saturating at <see cref="long.MaxValue"/>).
    /// </summary>
    public long RequiredBytes(long rows)
    {
        double bytes = sizeof(double) * ((Mlp.ParameterCopies * (double)ParameterCount) + (Mlp.ActivationCopies * (double)rows * (InputDim + Units)));
        return bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
    }

    /// <summary>
    /// Refuses a network whose <see cref="RequiredBytes"/> on <paramref name="rows"/> rows exceed the budget of
    /// <paramref name="limits"/> (<see cref="RunLimits.Require"/>), naming fewer channels or units and fewer rows as the remedies.
    /// </summary>
    /// <exception cref="MemoryBudgetExceededException">The network and its activations exceed the budget.</exception>
    public void RequireFits(long rows, RunLimits? limits = null) =>
        (limits ?? RunLimits.Default).Require($"the network {Spec} on {rows} rows of shape [{Shape(_inputShape)}] (the parameters ×{Mlp.ParameterCopies}, the activations ×{Mlp.ActivationCopies})",
            RequiredBytes(rows), "use fewer channels or units, or fewer rows", BudgetRemedy.Widths | BudgetRemedy.Rows);

    /// <summary>
    /// A random initial point: the weights of a conv2d or linear layer ~ N(0, 2/fan_in) when an activation follows it before the
    /// next such layer (He et al. 2015, as <see cref="Mlp.InitialParameters"/>), N(0, 1/fan_in) otherwise (a linear output);
    /// fan_in = in·k² for a convolution; biases 0; batch norm γ = 1, β = 0 (PyTorch's initial values). Deterministic for a seed
    /// (System.Random with Box–Muller, independent of libtorch's generator).
    /// </summary>
    public double[] InitialParameters(int seed)
    {
        var rng = new Random(seed);
        var p = new double[ParameterCount];
        for (int k = 0; k < _slices.Length; k++)
        {
            var s = _slices[k];
            switch (s.Layer)
            {
                case Conv2dLayer or LinearLayer:
                    long fanIn = s.WeightCount / s.BiasCount;
                    double gain = _slices.Skip(k + 1).TakeWhile(t => t.Layer is not (Conv2dLayer or LinearLayer)).Any(t => t.Layer is ActivationLayer) ? 2.0 : 1.0;
                    double std = Math.Sqrt(gain / fanIn);
                    for (int i = 0; i < s.WeightCount; i++)
                    {
                        p[s.Offset + i] = std * SeededNormal.Next(rng);
                    }
                    break;
                case BatchNormLayer:
                    Array.Fill(p, 1.0, s.Offset, s.WeightCount);
                    break;
            }
        }
        return p;
    }

    /// <summary>
    /// Views the first block of <paramref name="layer"/>'s parameters inside p: a conv2d's weight [out, in, k, k], a linear
    /// layer's [out, in], a batch norm's γ [C].
    /// </summary>
    public static Tensor Weight(Tensor parameters, SequentialSlice layer)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(layer);
        var flat = parameters.narrow(0, layer.Offset, layer.WeightCount);
        return layer.Layer switch
        {
            Conv2dLayer c => flat.view(c.Out, layer.InputShape[0], c.Kernel, c.Kernel),
            LinearLayer l => flat.view(l.Out, layer.InputShape[0]),
            BatchNormLayer => flat,
            _ => throw new ArgumentException($"layer {layer.Index + 1} ({layer.Layer.Type}) has no parameters", nameof(layer)),
        };
    }

    /// <summary>Views the second block of <paramref name="layer"/>'s parameters inside p: the bias [out], or a batch norm's β [C].</summary>
    public static Tensor Bias(Tensor parameters, SequentialSlice layer)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(layer);
        return layer.BiasCount > 0
            ? parameters.narrow(0, layer.Offset + layer.WeightCount, layer.BiasCount)
            : throw new ArgumentException($"layer {layer.Index + 1} ({layer.Layer.Type}) has no parameters", nameof(layer));
    }

    /// <inheritdoc />
    protected override Tensor ForwardScaled(Tensor parameters, Tensor scaledInputs)
    {
        var a = scaledInputs.view([scaledInputs.shape[0], .. _inputShape]);
        foreach (var s in _slices)
        {
            a = Apply(s, parameters, a);
        }
        return a;
    }

    /// <inheritdoc />
    /// <remarks>Every parameter belongs to one layer, and the sweep assigns each layer's blocks.</remarks>
    protected override bool JacobianWritesEveryEntry => true;

    /// <summary>
    /// Per-sample gradients by one forward pass and one reverse sweep with the adjoint δ ∈ ℝ^{d×ℓ×(layer's output)}, δ = I at
    /// the outputs. Per layer, with a its input: linear ∂W = δ ⊗ a, ∂b = δ, δ ← δW; conv2d ∂W = δ·unfold(a)ᵀ (per sample and
    /// output), ∂b = Σ_positions δ, δ ← conv_transpose2d(δ, W); batch norm ∂γ = Σ_positions δ ⊙ â with â = (a − μ)/√(σ² + ε),
    /// ∂β = Σ_positions δ, δ ← δ·γ/√(σ² + ε); max pool routes δ to each window's maximum (the index torch's forward chose);
    /// average pool spreads δ/k² over each window (conv_transpose2d with a constant kernel); σ: δ ← δ ⊙ σ′(a).
    /// </summary>
    protected override void AccumulateJacobian(Tensor parameters, Tensor scaledInputs, Tensor jacobian)
    {
        long d = scaledInputs.shape[0];
        int l = OutputDim;
        var jac = jacobian.view(d, l, ParameterCount);
        Sweep(parameters, scaledInputs, (s, x, delta) =>
        {
            switch (s.Layer)
            {
                case LinearLayer lin:
                {
                    long fanIn = s.InputShape[0];
                    var block = jac.narrow(2, s.Offset, s.WeightCount).view(d, l, lin.Out, fanIn);
                    block.copy_(x.unsqueeze(1).unsqueeze(1).expand(d, l, lin.Out, fanIn));
                    block.mul_(delta.unsqueeze(-1));
                    jac.narrow(2, s.Offset + s.WeightCount, lin.Out).copy_(delta);
                    break;
                }
                case Conv2dLayer conv:
                {
                    long positions = s.OutputShape[1] * s.OutputShape[2];
                    // im2col: (d, in·k·k, positions), the rows in the order of the weight's [in, k, k].
                    var columns = Unfold(x, conv);
                    var flat = delta.reshape(d, l, conv.Out, positions);
                    jac.narrow(2, s.Offset, s.WeightCount).view(d, l, conv.Out, s.WeightCount / conv.Out)
                        .copy_(flat.matmul(columns.unsqueeze(1).transpose(2, 3)));
                    jac.narrow(2, s.Offset + s.WeightCount, conv.Out).copy_(flat.sum(-1));
                    break;
                }
                case BatchNormLayer:
                    jac.narrow(2, s.Offset, s.Count).copy_(BatchNormGradients(s, x, delta));
                    break;
            }
        });
    }

    /// <summary>
    /// The per-sample gradients of a batch norm layer's parameters from its input a and the δ at its output (d × ℓ × its
    /// shape, <see cref="JacobianFactors"/>): ∂f_j(xᵢ)/∂γ = Σ_positions δ[i,j] ⊙ â[i] with â = (a − μ)/√(σ² + ε), and
    /// ∂f_j(xᵢ)/∂β = Σ_positions δ[i,j]; a d × ℓ × 2C tensor, γ's then β's, the layout of p.
    /// </summary>
    public Tensor BatchNormGradients(SequentialSlice layer, Tensor input, Tensor delta)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(delta);
        if (layer.Layer is not BatchNormLayer bn)
        {
            throw new ArgumentException($"layer {layer.Index + 1} ({layer.Layer.Type}) is not a batch norm", nameof(layer));
        }
        using var scope = NewDisposeScope();
        var (mean, inverse) = Statistics(layer.Index, bn, input);
        var normalized = input.sub(mean).mul(inverse).unsqueeze(1);
        long[] spatial = layer.InputShape.Count == 3 ? [3, 4] : [];
        var perGamma = delta.mul(normalized);
        return cat([spatial.Length > 0 ? perGamma.sum(spatial) : perGamma, spatial.Length > 0 ? delta.sum(spatial) : delta], 2).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The per-layer factors of the per-sample gradients, for raw inputs (d rows of the network's input shape, or flat): for
    /// each layer with parameters (conv2d, linear, batch norm), first first, the layer's input a (d × its input shape) and the
    /// back-propagated δ = ∂f/∂(the layer's output) (d × ℓ × its output shape), so that for a linear layer
    /// ∂f_j(xᵢ)/∂W = δ[i,j] a[i]ᵀ and ∂f_j(xᵢ)/∂b = δ[i,j], for a convolution ∂f_j(xᵢ)/∂W = δ[i,j]·unfold(a[i])ᵀ and
    /// ∂f_j(xᵢ)/∂b = Σ_positions δ[i,j]. One forward pass and one reverse sweep (the one the Jacobian is written from), without autograd.
    /// </summary>
    public IReadOnlyList<(SequentialSlice Layer, Tensor Input, Tensor Delta)> JacobianFactors(Tensor parameters, Tensor inputs)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(inputs);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scaled = ScaleInputs(inputs.reshape(inputs.shape[0], -1));
        var factors = new List<(SequentialSlice, Tensor, Tensor)>();
        Sweep(parameters.detach(), scaled, (s, x, delta) => factors.Add((s, x.MoveToOuterDisposeScope(), delta.contiguous().MoveToOuterDisposeScope())));
        factors.Reverse();
        return factors;
    }

    /// <summary>
    /// The im2col patches of a convolution's input: (d, in·k·k, positions), the rows in the order of the weight's [in, k, k]
    /// and the positions row-major over the output's height and width.
    /// </summary>
    public static Tensor Unfold(Tensor input, Conv2dLayer conv)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(conv);
        return nn.functional.unfold(input, (conv.Kernel, conv.Kernel), padding: (conv.Padding, conv.Padding), stride: (conv.Stride, conv.Stride));
    }

    /// <summary>
    /// One forward pass and one reverse sweep with δ = I at the outputs: <paramref name="visit"/>(layer, its input, δ at its
    /// output, d × ℓ × output shape) for every layer with parameters, last first, before δ moves below it.
    /// </summary>
    private void Sweep(Tensor parameters, Tensor scaledInputs, Action<SequentialSlice, Tensor, Tensor> visit)
    {
        long d = scaledInputs.shape[0];
        int l = OutputDim;
        var inputs = new Tensor[_slices.Length];
        var maxima = new Tensor?[_slices.Length];
        var a = scaledInputs.view([d, .. _inputShape]);
        for (int k = 0; k < _slices.Length; k++)
        {
            inputs[k] = a;
            if (_slices[k].Layer is MaxPool2dLayer m)
            {
                (a, maxima[k]) = nn.functional.max_pool2d_with_indices(a, [m.Kernel, m.Kernel], [m.Stride, m.Stride]);
            }
            else
            {
                a = Apply(_slices[k], parameters, a);
            }
        }
        int first = Array.FindIndex(_slices, s => s.Count > 0);
        // δ at the outputs: the identity on the ℓ outputs, for every sample. Shape (d, ℓ, ℓ).
        var delta = eye(l, dtype: parameters.dtype).unsqueeze(0).expand(d, l, l);
        for (int k = _slices.Length - 1; k >= first; k--)
        {
            var s = _slices[k];
            var x = inputs[k];
            long[] inShape = [.. s.InputShape];
            long[] outShape = [.. s.OutputShape];
            switch (s.Layer)
            {
                case LinearLayer:
                {
                    visit(s, x, delta);
                    if (k > first)
                    {
                        delta = delta.matmul(Weight(parameters, s));
                    }
                    break;
                }
                case Conv2dLayer conv:
                {
                    visit(s, x, delta);
                    if (k > first)
                    {
                        delta = Transpose(delta.reshape(d * l, conv.Out, outShape[1], outShape[2]), Weight(parameters, s), conv.Stride, conv.Padding, inShape)
                            .view([d, l, .. inShape]);
                    }
                    break;
                }
                case BatchNormLayer bn:
                {
                    visit(s, x, delta);
                    if (k > first)
                    {
                        var (_, inverse) = Statistics(k, bn, x);
                        delta = delta.mul(Weight(parameters, s).view(ChannelShape(inShape)).mul(inverse));
                    }
                    break;
                }
                case MaxPool2dLayer:
                {
                    long channels = inShape[0], area = inShape[1] * inShape[2], pooled = outShape[1] * outShape[2];
                    var index = maxima[k]!.reshape(d, 1, channels, pooled).expand(d, l, channels, pooled);
                    delta = zeros(d, l, channels, area, dtype: parameters.dtype)
                        .scatter_add_(3, index, delta.reshape(d, l, channels, pooled))
                        .view([d, l, .. inShape]);
                    break;
                }
                case AvgPool2dLayer avg:
                {
                    var spread = ones(1, 1, avg.Kernel, avg.Kernel, dtype: parameters.dtype).TimesInPlace(1.0 / (avg.Kernel * avg.Kernel));
                    delta = Transpose(delta.reshape(d * l * inShape[0], 1, outShape[1], outShape[2]), spread, avg.Stride, 0, [1, inShape[1], inShape[2]])
                        .view([d, l, .. inShape]);
                    break;
                }
                case FlattenLayer:
                    delta = delta.reshape([d, l, .. inShape]);
                    break;
                case ActivationLayer f:
                    delta = delta.mul(f.Activation.Derivative(x).unsqueeze(1));
                    break;
            }
        }
    }

    /// <summary>
    /// The adjoint of a convolution (stride s, padding q) applied to <paramref name="delta"/>: conv_transpose2d, with the output
    /// padding that restores the input's height and width (the rows and columns floor((H + 2q − k)/s) left out of every window).
    /// </summary>
    private static Tensor Transpose(Tensor delta, Tensor weight, int stride, int padding, long[] inShape)
    {
        long kernel = weight.shape[2];
        long extraH = inShape[1] - (((delta.shape[2] - 1) * stride) - (2 * padding) + kernel);
        long extraW = inShape[2] - (((delta.shape[3] - 1) * stride) - (2 * padding) + kernel);
        return nn.functional.conv_transpose2d(delta, weight, strides: [stride, stride], padding: [padding, padding], output_padding: [extraH, extraW]);
    }

    /// <summary>The forward pass of one layer (a max pool without its indices) on a batch <paramref name="a"/> of rows.</summary>
    private Tensor Apply(SequentialSlice s, Tensor parameters, Tensor a) => s.Layer switch
    {
        Conv2dLayer c => nn.functional.conv2d(a, Weight(parameters, s), Bias(parameters, s), strides: [c.Stride, c.Stride], padding: [c.Padding, c.Padding]),
        MaxPool2dLayer m => nn.functional.max_pool2d(a, [m.Kernel, m.Kernel], [m.Stride, m.Stride]),
        AvgPool2dLayer v => nn.functional.avg_pool2d(a, [v.Kernel, v.Kernel], [v.Stride, v.Stride]),
        BatchNormLayer bn => BatchNorm(s, bn, parameters, a),
        FlattenLayer => a.reshape(a.shape[0], -1),
        LinearLayer => nn.functional.linear(a, Weight(parameters, s), Bias(parameters, s)),
        ActivationLayer f => f.Activation.Apply(a),
        _ => throw new NotSupportedException($"layer type {s.Layer.Type}"),
    };

    /// <summary>
    /// Eval-mode batch norm as torch computes it on the CPU: α = γ/√(σ² + ε), y = x·α + (β − μ·α), per channel.
    /// </summary>
    private Tensor BatchNorm(SequentialSlice s, BatchNormLayer bn, Tensor parameters, Tensor a)
    {
        var (mean, inverse) = Statistics(s.Index, bn, a);
        var shape = ChannelShape([.. s.InputShape]);
        var alpha = Weight(parameters, s).view(shape).mul(inverse);
        var shift = Bias(parameters, s).view(shape).sub(mean.mul(alpha));
        return a.mul(alpha).Plus(shift);
    }

    /// <summary>μ and 1/√(σ² + ε) of batch norm layer <paramref name="k"/>, shaped to broadcast over a batch's channels.</summary>
    private (Tensor Mean, Tensor Inverse) Statistics(int k, BatchNormLayer bn, Tensor like)
    {
        var shape = ChannelShape([.. _slices[k].InputShape]);
        return (tensor(bn.RunningMean!.ToArray(), dtype: like.dtype).view(shape), tensor(_inverseStd[k]!, dtype: like.dtype).view(shape));
    }

    /// <summary>[C, 1, 1] for an image row [C, H, W], [F] for a flat one: a per-channel value broadcast over a batch.</summary>
    private static long[] ChannelShape(long[] rowShape) => rowShape.Length == 3 ? [rowShape[0], 1, 1] : [rowShape[0]];

    /// <summary>The layer with its defaults filled in, its output shape and its parameter count, or a refusal naming the problem.</summary>
    private static (SequentialLayer Layer, long[] Output, long Count) Place(SequentialLayer layer, long[] shape, string where)
    {
        LandscapeInputException Fail(string problem) => new($"{where}: {problem}");
        void Positive(int value, string name)
        {
            if (value < 1)
            {
                throw Fail($"{name} must be a positive integer, got {value}");
            }
        }
        long[] Image()
        {
            return shape.Length == 3
                ? shape
                : throw Fail($"needs an image input [C, H, W], but its input is flat [{Shape(shape)}]");
        }
        long Window(long size, int kernel, int stride, int padding, string axis) =>
            kernel <= size + (2L * padding)
                ? ((size + (2L * padding) - kernel) / stride) + 1
                : throw Fail($"the kernel {kernel} is larger than the {axis} of the {(padding > 0 ? "padded " : "")}input, {size + (2L * padding)}");
        switch (layer)
        {
            case Conv2dLayer c:
            {
                var image = Image();
                Positive(c.Out, "out");
                Positive(c.Kernel, "kernel");
                Positive(c.Stride, "stride");
                if (c.Padding < 0)
                {
                    throw Fail($"padding must be an integer ≥ 0, got {c.Padding}");
                }
                long h = Window(image[1], c.Kernel, c.Stride, c.Padding, "height"), w = Window(image[2], c.Kernel, c.Stride, c.Padding, "width");
                return (c, [c.Out, h, w], ((long)c.Out * image[0] * c.Kernel * c.Kernel) + c.Out);
            }
            case MaxPool2dLayer or AvgPool2dLayer:
            {
                var (kernel, stride) = layer is MaxPool2dLayer m ? (m.Kernel, m.Stride) : (((AvgPool2dLayer)layer).Kernel, ((AvgPool2dLayer)layer).Stride);
                var image = Image();
                Positive(kernel, "kernel");
                Positive(stride, "stride");
                return (layer, [image[0], Window(image[1], kernel, stride, 0, "height"), Window(image[2], kernel, stride, 0, "width")], 0);
            }
            case BatchNormLayer bn:
            {
                long channels = shape[0];
                var mean = bn.RunningMean ?? new double[channels];
                var variance = bn.RunningVar ?? Enumerable.Repeat(1.0, (int)channels).ToArray();
                if (mean.Count != channels || variance.Count != channels)
                {
                    throw Fail($"the running mean has {mean.Count} and the running variance {variance.Count} values; the input [{Shape(shape)}] has {channels} {(shape.Length == 3 ? "channels" : "features")}");
                }
                int badMean = Index(mean, v => !double.IsFinite(v));
                if (badMean >= 0)
                {
                    throw Fail($"the running mean [{badMean}] is not a finite number");
                }
                int badVar = Index(variance, v => !double.IsFinite(v) || v < 0);
                if (badVar >= 0)
                {
                    throw Fail($"the running variance [{badVar}] = {variance[badVar].ToString("R", CultureInfo.InvariantCulture)} is not a finite number ≥ 0");
                }
                if (!double.IsFinite(bn.Eps) || bn.Eps <= 0)
                {
                    throw Fail($"eps = {bn.Eps.ToString("R", CultureInfo.InvariantCulture)} is not a finite number > 0");
                }
                return (new BatchNormLayer(mean.ToArray(), variance.ToArray(), bn.Eps), shape, 2 * channels);
            }
            case FlattenLayer:
                return (layer, [shape.Aggregate(1L, (a, b) => a * b)], 0);
            case LinearLayer lin:
                if (shape.Length != 1)
                {
                    throw Fail($"needs a flat input, but its input is the image [{Shape(shape)}]: put flatten before it");
                }
                Positive(lin.Out, "out");
                return (lin, [lin.Out], ((long)lin.Out * shape[0]) + lin.Out);
            case ActivationLayer f:
                return f.Activation is null ? throw Fail("no activation") : (f, shape, 0);
            default:
                throw Fail("unknown layer");
        }
    }

    private static int Index(IReadOnlyList<double> values, Func<double, bool> bad)
    {
        for (int i = 0; i < values.Count; i++)
        {
            if (bad(values[i]))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>A shape as <c>1, 8, 8</c>.</summary>
    internal static string Shape(IEnumerable<long> shape) => string.Join(", ", shape.Select(s => s.ToString(CultureInfo.InvariantCulture)));
}
