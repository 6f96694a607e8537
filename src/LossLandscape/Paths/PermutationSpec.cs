using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>
/// Where the units of every permutable layer of a layered network sit in p and in the network's fixed statistics: Git
/// Re-Basin's permutation spec (Ainsworth, Hayase and Srinivasa 2022, §3 and Appendix A, their code's
/// <c>permutation_spec_from_axes_to_perm</c>), the one description that <see cref="UnitPermutation"/> applies and
/// <see cref="WeightMatching"/> matches on.
/// </summary>
/// <remarks>
/// <para>p is cut into blocks, each a row-major box [rows, columns, inner] whose rows are the units of one permutable layer
/// (or of none) and whose columns those of another (or of none): π moves whole rows and columns,
/// block′[r, c, i] = block[π_row(r), π_col(c), i], and never the inner axis.</para>
/// <para>An MLP: W_k is [h_k, h_{k−1}, 1] and b_k [h_k, 1, 1], rows of hidden layer k, columns of hidden layer k − 1.</para>
/// <para>A sequential network: the units of a conv2d layer are its output channels and those of a linear layer its
/// outputs; every conv2d or linear layer is permutable but the last such layer, which makes the outputs.
/// Its units are followed until the next conv2d or linear layer reads them: activations and pools act per channel and
/// keep them; a batch norm on them has γ, β, μ and σ² (the last two the network's fixed statistics) as [1, C, 1] with
/// their columns; flatten turns channel c of a [C, H, W] map into the H·W consecutive features c·H·W … (c + 1)·H·W − 1, so
/// that what follows has [C, H·W] in place of C units (a batch norm [1, C, H·W], a linear layer's weight
/// [out, C, H·W]); the next conv2d has weight [out, in, k·k] with columns of the units below, a linear one [out, C, H·W]
/// (or [out, in, 1]), and bias [out, 1, 1]. Every such layer is equivariant under a permutation of its channels
/// (σ(P z) = P σ(z), a pool or batch norm per channel, a convolution summing over its input channels), so the network's
/// function is unchanged.</para>
/// </remarks>
internal sealed class PermutationSpec
{
    private readonly PermutableLayer[] _layers;
    private readonly Block[] _blocks;
    private readonly Statistic[] _statistics;

    private PermutationSpec(PermutableLayer[] layers, Block[] blocks, Statistic[] statistics)
    {
        _layers = layers;
        _blocks = blocks;
        _statistics = statistics;
    }

    /// <summary>
    /// A block of p, <see cref="Count"/> values from <see cref="Offset"/> viewed as [Rows, Cols, Inner] (row-major): its rows
    /// are the units of permutable layer <see cref="RowLayer"/>, its columns those of <see cref="ColLayer"/> (−1: not permuted).
    /// </summary>
    internal readonly record struct Block(int Offset, int Rows, int Cols, int Inner, int RowLayer, int ColLayer)
    {
        /// <summary>Rows·Cols·Inner.</summary>
        public int Count => Rows * Cols * Inner;
    }

    /// <summary>
    /// The running statistics μ and σ² of the batch norm at <see cref="Index"/> of a sequential network, each viewed as
    /// [1, Cols, Inner] with its columns the units of permutable layer <see cref="ColLayer"/>.
    /// </summary>
    internal readonly record struct Statistic(int Index, int Cols, int Inner, int ColLayer);

    /// <summary>The permutable layers, first first.</summary>
    public IReadOnlyList<PermutableLayer> Layers => _layers;

    /// <summary>The blocks of p; together they hold every parameter once.</summary>
    public IReadOnlyList<Block> Blocks => _blocks;

    /// <summary>The batch norms whose statistics a permutation moves.</summary>
    public IReadOnlyList<Statistic> Statistics => _statistics;

    /// <summary>
    /// The spec of an <see cref="Mlp"/> or a <see cref="SequentialNetwork"/>, or a one-line <see cref="LandscapeInputException"/>
    /// for any other network (a <see cref="DagNetwork"/>, whose labels may be shared, has no layers to permute).
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="what">What needs the layers, for the message (e.g. <c>weight matching</c>).</param>
    public static PermutationSpec Of(FeedforwardNetwork network, string what)
    {
        ArgumentNullException.ThrowIfNull(network);
        return network switch
        {
            Mlp mlp => Of(mlp),
            SequentialNetwork seq => Of(seq),
            DagNetwork dag => throw new LandscapeInputException(
                $"{what} is for layered networks ({ModelFile.MlpFormat} or {ModelFile.SeqFormat}); this is a DAG ({ModelFile.DagFormat}, {dag.Vertices.Count} vertices, {dag.ParameterCount} labels, possibly shared), whose units form no layers to permute"),
            TorchScriptNetwork script => throw new LandscapeInputException(
                $"{what} is for layered networks ({ModelFile.MlpFormat} or {ModelFile.SeqFormat}); {script.Path} is a TorchScript module, whose layers are compiled code, not a list of layers, so which parameters belong to one unit cannot be read from it"),
            _ => throw new LandscapeInputException($"{what} is for layered networks ({ModelFile.MlpFormat} or {ModelFile.SeqFormat}); this is a {network.GetType().Name}"),
        };
    }

    private static PermutationSpec Of(Mlp mlp)
    {
        var blocks = new List<Block>();
        for (int k = 0; k < mlp.Layers.Count; k++)
        {
            var layer = mlp.Layers[k];
            // Hidden layer k permutes the rows of W_k and b_k and the columns of W_{k+1}; the output layer (k = T) is not permuted.
            int rows = k < mlp.Hidden.Count ? k : -1;
            blocks.Add(new Block(layer.WeightOffset, layer.Out, layer.In, 1, rows, k - 1));
            blocks.Add(new Block(layer.BiasOffset, layer.Out, 1, 1, rows, -1));
        }
        var layers = mlp.Hidden.Select((h, k) => new PermutableLayer($"hidden layer {k + 1}", h.Width)).ToArray();
        return new PermutationSpec(layers, [.. blocks], []);
    }

    private static PermutationSpec Of(SequentialNetwork seq)
    {
        var slices = seq.Layers;
        int last = slices.Select(s => s.Layer).ToList().FindLastIndex(l => l is Conv2dLayer or LinearLayer);
        var layers = new List<PermutableLayer>();
        var blocks = new List<Block>();
        var statistics = new List<Statistic>();
        // The permutable layer whose units the current row's leading axis holds (−1: none), and the consecutive entries of
        // that axis per unit (1 until a flatten spreads a channel over its H·W features).
        int units = -1;
        int spread = 1;
        foreach (var s in slices)
        {
            int input = (int)s.InputShape[0];
            switch (s.Layer)
            {
                case Conv2dLayer or LinearLayer:
                {
                    int own = -1;
                    if (s.Index < last)
                    {
                        own = layers.Count;
                        layers.Add(new PermutableLayer($"layer {s.Index + 1} {s.Layer.Spec}", s.BiasCount));
                    }
                    // A conv2d's weight [out, in, k, k] as [out, in, k·k]; a linear one's [out, in] as [out, in/spread, spread].
                    var (cols, inner) = s.Layer is Conv2dLayer c ? (input, c.Kernel * c.Kernel) : (input / spread, spread);
                    blocks.Add(new Block(s.Offset, s.BiasCount, cols, inner, own, units));
                    blocks.Add(new Block(s.Offset + s.WeightCount, s.BiasCount, 1, 1, own, -1));
                    units = own;
                    spread = 1;
                    break;
                }
                case BatchNormLayer:
                    // γ, then β: one value per channel (or feature), with the columns of the units that feed it.
                    blocks.Add(new Block(s.Offset, 1, input / spread, spread, -1, units));
                    blocks.Add(new Block(s.Offset + s.WeightCount, 1, input / spread, spread, -1, units));
                    if (units >= 0)
                    {
                        statistics.Add(new Statistic(s.Index, input / spread, spread, units));
                    }
                    break;
                case FlattenLayer when s.InputShape.Count == 3:
                    // Channel c of [C, H, W] becomes the features c·H·W … (c + 1)·H·W − 1 (row-major flatten).
                    spread *= (int)(s.InputShape[1] * s.InputShape[2]);
                    break;
            }
        }
        return new PermutationSpec([.. layers], [.. blocks], [.. statistics]);
    }

    /// <summary>
    /// π(p): every block's rows and columns reordered, block′[r, c, i] = block[π_row(r), π_col(c), i]. A new array.
    /// </summary>
    /// <param name="permutations">One permutation per permutable layer (<see cref="UnitPermutation.Layers"/>), checked by the caller.</param>
    /// <param name="parameters">p.</param>
    public double[] Apply(IReadOnlyList<int[]> permutations, double[] parameters)
    {
        var result = (double[])parameters.Clone();
        foreach (var b in _blocks)
        {
            Permute(parameters.AsSpan(b.Offset, b.Count), result.AsSpan(b.Offset, b.Count), b.Rows, b.Cols, b.Inner,
                b.RowLayer >= 0 ? permutations[b.RowLayer] : null, b.ColLayer >= 0 ? permutations[b.ColLayer] : null);
        }
        return result;
    }

    /// <summary>
    /// The network with its batch norms' running statistics μ and σ² permuted as their γ and β are (<see cref="Statistics"/>);
    /// the network itself when no batch norm follows a permutable layer. The input scaling is kept.
    /// </summary>
    public SequentialNetwork Apply(IReadOnlyList<int[]> permutations, SequentialNetwork network)
    {
        if (_statistics.Length == 0)
        {
            return network;
        }
        var layers = network.Layers.Select(s => s.Layer).ToArray();
        foreach (var st in _statistics)
        {
            var bn = (BatchNormLayer)layers[st.Index];
            double[] Moved(IReadOnlyList<double> values)
            {
                var source = values.ToArray();
                var moved = new double[source.Length];
                Permute(source, moved, 1, st.Cols, st.Inner, null, permutations[st.ColLayer]);
                return moved;
            }
            layers[st.Index] = bn with { RunningMean = Moved(bn.RunningMean!), RunningVar = Moved(bn.RunningVar!) };
        }
        return new SequentialNetwork(network.InputShape, layers) { Scaling = network.Scaling };
    }

    /// <summary>to[r, c, i] = from[rows(r), cols(c), i] on [rows, cols, inner] boxes (null: the identity).</summary>
    private static void Permute(ReadOnlySpan<double> from, Span<double> to, int rows, int cols, int inner, int[]? rowPerm, int[]? colPerm)
    {
        for (int r = 0; r < rows; r++)
        {
            int sr = rowPerm is null ? r : rowPerm[r];
            for (int c = 0; c < cols; c++)
            {
                int sc = colPerm is null ? c : colPerm[c];
                from.Slice(((sr * cols) + sc) * inner, inner).CopyTo(to.Slice(((r * cols) + c) * inner, inner));
            }
        }
    }
}
