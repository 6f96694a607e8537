using System.Globalization;
using LossLandscape.Models;

namespace LossLandscape.Approximations;

/// <summary>The kinds of layer a <see cref="ParameterBlock"/> can hold.</summary>
public enum LayerKind
{
    /// <summary>An affine layer W a + b (an MLP's layers, a sequential network's <c>linear</c>).</summary>
    Linear,

    /// <summary>A 2-D convolution (<see cref="Conv2dLayer"/>): W [out, in, k, k] shared over the output's positions, and b.</summary>
    Conv2d,

    /// <summary>Batch norm in eval mode (<see cref="BatchNormLayer"/>): γ and β per channel.</summary>
    BatchNorm,
}

/// <summary>
/// One layer's parameters in p: a contiguous block, its weights then its bias (for batch norm γ then β). The unit of the
/// block-diagonal curvature approximations (KFAC, EKFAC, the per-layer Hessian and Gauss–Newton blocks).
/// </summary>
/// <param name="Index">The layer's position in its network's list of layers (<see cref="Mlp.Layers"/>, <see cref="SequentialNetwork.Layers"/>).</param>
/// <param name="Name">The layer in words, e.g. <c>layer 2 (linear 5 → 3)</c>, for tables.</param>
/// <param name="Kind">Linear, conv2d or batch norm.</param>
/// <param name="Offset">The index in p of the block's first parameter.</param>
/// <param name="Count">The block's number of parameters: out·fan-in + out for linear and conv2d, 2C for batch norm.</param>
/// <param name="Out">Output features or channels (for batch norm, its channels C).</param>
/// <param name="FanIn">Inputs per output of the weight: in for linear, in·k·k for conv2d; 1 for batch norm (γ acts on one value).</param>
/// <param name="Positions">Positions the weight is shared over: 1 for linear, the output's height × width for conv2d, the input's for batch norm.</param>
public sealed record ParameterBlock(int Index, string Name, LayerKind Kind, int Offset, int Count, int Out, int FanIn, long Positions)
{
    /// <summary>Whether the block has Kronecker structure, a weight W (out × fan-in) and a bias (out): linear and conv2d.</summary>
    public bool IsKronecker => Kind is LayerKind.Linear or LayerKind.Conv2d;

    /// <summary>The weight's length: out·fan-in (C for batch norm's γ).</summary>
    public int WeightCount => Kind == LayerKind.BatchNorm ? Count / 2 : Out * FanIn;

    /// <summary>The block's parameters are p[Offset … End − 1].</summary>
    public int End => Offset + Count;
}

/// <summary>
/// The one function that gives a model's per-layer parameter blocks (<see cref="Of(IDifferentiableModel)"/>): every approximation, the per-layer
/// block diagonals and the per-layer views of the spectrum and the trace read their blocks from here.
/// </summary>
public static class ParameterBlocks
{
    /// <summary>
    /// The blocks of <paramref name="model"/>, first layer first, covering p: one per affine layer of an <see cref="Mlp"/>
    /// (weights then bias, the file's layout), one per conv2d, linear and batch norm layer of a <see cref="SequentialNetwork"/>.
    /// </summary>
    /// <exception cref="LandscapeInputException">
    /// The model has no layers of its own: a DAG (its parameter labels are shared across vertices and layers, so no layer
    /// owns a block), a TorchScript module or another module.
    /// </exception>
    public static IReadOnlyList<ParameterBlock> Of(IDifferentiableModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model is NetworkModel network
            ? Of(network.Network)
            : throw new LandscapeInputException("per-layer blocks are defined for the project's MLPs and sequential networks (losslandscape.mlp/1, losslandscape.seq/1); this model is a module whose layers are not known");
    }

    /// <summary>The blocks of <paramref name="network"/> (see <see cref="Of(IDifferentiableModel)"/>).</summary>
    /// <exception cref="LandscapeInputException">The network is not an MLP or a sequential network.</exception>
    public static IReadOnlyList<ParameterBlock> Of(FeedforwardNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        switch (network)
        {
            case Mlp mlp:
                return mlp.Layers.Select((layer, k) => new ParameterBlock(k, Invariant($"layer {k + 1} (linear {layer.In} → {layer.Out})"),
                    LayerKind.Linear, layer.WeightOffset, layer.Count, layer.Out, layer.In, 1)).ToArray();
            case SequentialNetwork seq:
                var blocks = new List<ParameterBlock>();
                foreach (var s in seq.Layers.Where(s => s.Count > 0))
                {
                    string where = Invariant($"layer {s.Index + 1}");
                    blocks.Add(s.Layer switch
                    {
                        LinearLayer lin => new ParameterBlock(s.Index, Invariant($"{where} (linear {s.InputShape[0]} → {lin.Out})"), LayerKind.Linear, s.Offset, s.Count, lin.Out, (int)s.InputShape[0], 1),
                        Conv2dLayer conv => new ParameterBlock(s.Index, Invariant($"{where} (conv2d {s.InputShape[0]} → {conv.Out}, {conv.Kernel}×{conv.Kernel})"), LayerKind.Conv2d, s.Offset, s.Count,
                            conv.Out, s.WeightCount / conv.Out, s.OutputShape[1] * s.OutputShape[2]),
                        BatchNormLayer => new ParameterBlock(s.Index, Invariant($"{where} (batchnorm {s.InputShape[0]})"), LayerKind.BatchNorm, s.Offset, s.Count,
                            (int)s.InputShape[0], 1, s.InputShape.Count == 3 ? s.InputShape[1] * s.InputShape[2] : 1),
                        _ => throw new NotSupportedException($"layer {s.Index + 1} ({s.Layer.Type}) has parameters but no block"),
                    });
                }
                return blocks;
            case DagNetwork:
                throw new LandscapeInputException("a DAG has no per-layer blocks: its parameter labels are shared across vertices and layers, so no layer owns its parameters; use an MLP or a sequential network");
            default:
                throw new LandscapeInputException($"per-layer blocks are defined for MLPs and sequential networks, not for a {network.GetType().Name}");
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
