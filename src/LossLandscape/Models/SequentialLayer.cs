using System.Globalization;
using LossLandscape.Models.Activations;

namespace LossLandscape.Models;

/// <summary>
/// One layer of a <see cref="SequentialNetwork"/>, as PyTorch's <c>torch.nn</c> layer of the same name computes it.
/// </summary>
/// <remarks>
/// The layers are: <see cref="Conv2dLayer"/>, <see cref="MaxPool2dLayer"/>, <see cref="AvgPool2dLayer"/>,
/// <see cref="BatchNormLayer"/> (eval mode), <see cref="FlattenLayer"/>, <see cref="LinearLayer"/> and
/// <see cref="ActivationLayer"/> (every activation of <see cref="ActivationRegistry"/>).
/// </remarks>
public abstract record SequentialLayer
{
    private protected SequentialLayer()
    {
    }

    /// <summary>The layer's <c>type</c> in a <c>losslandscape.seq/1</c> model file, e.g. <c>conv2d</c>.</summary>
    public abstract string Type { get; }

    /// <summary>The layer in the syntax of <see cref="ArchitectureSpec"/>, e.g. <c>conv:16:3:1:1</c>.</summary>
    public abstract string Spec { get; }

    /// <inheritdoc/>
    public override string ToString() => Spec;

    /// <summary>An integer in invariant notation.</summary>
    private protected static string I(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// A 2-D convolution, <c>torch.nn.Conv2d(in, Out, Kernel, Stride, Padding)</c>: square kernel, zero padding, no dilation, one
/// group. Its parameters in p are the weight [Out, in, Kernel, Kernel] (row-major, PyTorch's layout), then the bias [Out].
/// </summary>
/// <param name="Out">Output channels.</param>
/// <param name="Kernel">The kernel's height and width.</param>
/// <param name="Stride">The step between windows, in both directions.</param>
/// <param name="Padding">Zeros added on every side of the input.</param>
public sealed record Conv2dLayer(int Out, int Kernel, int Stride = 1, int Padding = 0) : SequentialLayer
{
    /// <inheritdoc/>
    public override string Type => "conv2d";

    /// <inheritdoc/>
    public override string Spec => $"conv:{I(Out)}:{I(Kernel)}:{I(Stride)}:{I(Padding)}";
}

/// <summary>Max pooling over square windows, <c>torch.nn.MaxPool2d(Kernel, Stride)</c>, without padding; no parameters.</summary>
/// <param name="Kernel">The window's height and width.</param>
/// <param name="Stride">The step between windows (PyTorch's default is the kernel).</param>
public sealed record MaxPool2dLayer(int Kernel, int Stride) : SequentialLayer
{
    /// <inheritdoc/>
    public override string Type => "maxpool2d";

    /// <inheritdoc/>
    public override string Spec => $"pool:{I(Kernel)}:{I(Stride)}";
}

/// <summary>Average pooling over square windows, <c>torch.nn.AvgPool2d(Kernel, Stride)</c>, without padding; no parameters.</summary>
/// <param name="Kernel">The window's height and width.</param>
/// <param name="Stride">The step between windows (PyTorch's default is the kernel).</param>
public sealed record AvgPool2dLayer(int Kernel, int Stride) : SequentialLayer
{
    /// <inheritdoc/>
    public override string Type => "avgpool2d";

    /// <inheritdoc/>
    public override string Spec => $"avgpool:{I(Kernel)}:{I(Stride)}";
}

/// <summary>
/// Batch normalization in eval mode, <c>torch.nn.BatchNorm2d(C)</c> on a [C, H, W] input and <c>BatchNorm1d(C)</c> on a flat
/// [C] one, after <c>eval()</c>: y = (x − μ)/√(σ² + ε)·γ + β per channel, with the running statistics μ and σ² fixed
/// values of the model (stored in its file), not parameters. Its parameters in p are γ [C], then β [C].
/// </summary>
/// <remarks>
/// Eval mode is how PyHessian evaluates a network: f is then one function of p, whatever the batch (see
/// <see cref="ModuleMode"/>). Null statistics stand for a fresh layer's, μ = 0 and σ² = 1 (PyTorch's initial running
/// statistics); the network fills them in (<see cref="SequentialNetwork.Layers"/> holds them).
/// </remarks>
/// <param name="RunningMean">μ, one value per channel; null for zeros.</param>
/// <param name="RunningVar">σ², one value ≥ 0 per channel; null for ones.</param>
/// <param name="Eps">ε &gt; 0, added to σ² (default <see cref="DefaultEps"/>).</param>
public sealed record BatchNormLayer(IReadOnlyList<double>? RunningMean = null, IReadOnlyList<double>? RunningVar = null, double Eps = BatchNormLayer.DefaultEps) : SequentialLayer
{
    /// <summary>ε of <c>torch.nn.BatchNorm2d</c>'s default, 1e−5.</summary>
    public const double DefaultEps = 1e-5;

    /// <inheritdoc/>
    public override string Type => "batchnorm";

    /// <inheritdoc/>
    public override string Spec => "bn";
}

/// <summary>Flattens each row to one dimension, <c>torch.nn.Flatten()</c>; no parameters.</summary>
public sealed record FlattenLayer : SequentialLayer
{
    /// <inheritdoc/>
    public override string Type => "flatten";

    /// <inheritdoc/>
    public override string Spec => "flatten";
}

/// <summary>
/// An affine layer on a flat input, <c>torch.nn.Linear(in, Out)</c>: W a + b. Its parameters in p are W [Out, in]
/// (row-major), then b [Out].
/// </summary>
/// <param name="Out">Output features.</param>
public sealed record LinearLayer(int Out) : SequentialLayer
{
    /// <inheritdoc/>
    public override string Type => "linear";

    /// <inheritdoc/>
    public override string Spec => $"linear:{I(Out)}";
}

/// <summary>An activation σ applied elementwise (<see cref="ActivationRegistry"/>); no parameters.</summary>
/// <param name="Activation">σ.</param>
public sealed record ActivationLayer(Activation Activation) : SequentialLayer
{
    /// <inheritdoc/>
    public override string Type => Activation.Name;

    /// <inheritdoc/>
    public override string Spec => Activation.Name;
}

/// <summary>A layer of a <see cref="SequentialNetwork"/> placed: its shapes and where its parameters sit in p.</summary>
/// <param name="Index">The layer's position, 0 for the first.</param>
/// <param name="Layer">The layer (a batch norm with its statistics filled in).</param>
/// <param name="InputShape">The shape of one row entering it: [C, H, W] or [F].</param>
/// <param name="OutputShape">The shape of one row leaving it.</param>
/// <param name="Offset">The index in p of its first parameter (the weight, or γ); where the next layer's begin if it has none.</param>
/// <param name="Count">Its number of parameters.</param>
public sealed record SequentialSlice(int Index, SequentialLayer Layer, IReadOnlyList<long> InputShape, IReadOnlyList<long> OutputShape, int Offset, int Count)
{
    /// <summary>The length of the first block of its parameters: the weight (conv2d, linear) or γ (batch norm); 0 for a layer without parameters.</summary>
    public int WeightCount => Layer is BatchNormLayer ? Count / 2 : Count - BiasCount;

    /// <summary>The length of the second block: the bias (conv2d, linear) or β (batch norm).</summary>
    public int BiasCount => Layer switch
    {
        Conv2dLayer c => c.Out,
        LinearLayer l => l.Out,
        BatchNormLayer => Count / 2,
        _ => 0,
    };

    /// <summary>The values a row holds after the layer, the product of <see cref="OutputShape"/>.</summary>
    public long OutputSize => OutputShape.Aggregate(1L, (a, b) => a * b);
}
