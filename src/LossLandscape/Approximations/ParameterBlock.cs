using System.Globalization;
using LossLandscape.Models;
using static TorchSharp.torch;

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

    /// <summary>
    /// A level of a <see cref="DagNetwork"/>: the parameters (edge weights and biases) of the vertices at one depth, the length
    /// of the longest path from an input; no Kronecker structure.
    /// </summary>
    Level,

    /// <summary>
    /// A submodule of a TorchScript network: its parameters in <c>named_parameters()</c> that share a prefix (<c>conv1.weight</c>
    /// and <c>conv1.bias</c>); the layer's type (its stride, padding, what it computes) is not read, so no Kronecker structure.
    /// </summary>
    Module,
}

/// <summary>
/// One layer's parameters in p: a contiguous block, its weights then its bias (for batch norm γ then β); for a DAG's level, the
/// labels of its vertices' edges and biases, wherever they sit in p (<see cref="Indices"/>). The unit of the block-diagonal
/// curvature approximations (KFAC, EKFAC, the per-layer Hessian and Gauss–Newton blocks).
/// </summary>
/// <param name="Index">The layer's position in its network's list of layers (<see cref="Mlp.Layers"/>, <see cref="SequentialNetwork.Layers"/>).</param>
/// <param name="Name">The layer in words, e.g. <c>layer 2 (linear 5 → 3)</c>, for tables.</param>
/// <param name="Kind">Linear, conv2d or batch norm.</param>
/// <param name="Offset">The index in p of the block's first parameter (its smallest, for a DAG's level).</param>
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

    /// <summary>The end of a contiguous block: its parameters are p[Offset … End − 1].</summary>
    public int End => Offset + Count;

    /// <summary>A DAG level's parameters in p, ascending; null for a contiguous block (then <see cref="Indices"/> is Offset … End − 1).</summary>
    public IReadOnlyList<int>? Scattered { get; init; }

    /// <summary>Whether the block is p[Offset … End − 1].</summary>
    public bool IsContiguous => Scattered is null;

    /// <summary>The block's parameters in p, in the block's own order.</summary>
    public IReadOnlyList<int> Indices => Scattered ?? Enumerable.Range(Offset, Count).ToArray();

    /// <summary>The block's rows of <paramref name="t"/> (a vector of length n, or n × k): a view for a contiguous block, a copy otherwise.</summary>
    public Tensor Rows(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return IsContiguous ? t.narrow(0, Offset, Count) : t.index_select(0, IndexTensor(t.device));
    }

    /// <summary>Writes <paramref name="value"/> (Count rows) into the block's rows of <paramref name="target"/>, in place.</summary>
    public void SetRows(Tensor target, Tensor value)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(value);
        if (IsContiguous)
        {
            target.narrow(0, Offset, Count).copy_(value);
        }
        else
        {
            target.index_copy_(0, IndexTensor(target.device), value);
        }
    }

    private Tensor IndexTensor(Device device) => tensor(Scattered!.Select(i => (long)i).ToArray(), dtype: ScalarType.Int64, device: device);
}

/// <summary>
/// The one function that gives a model's per-layer parameter blocks (<see cref="Of(IDifferentiableModel)"/>): every approximation, the per-layer
/// block diagonals and the per-layer views of the spectrum and the trace read their blocks from here.
/// </summary>
public static class ParameterBlocks
{
    /// <summary>
    /// The blocks of <paramref name="model"/>, first layer first, covering p: one per affine layer of an <see cref="Mlp"/>
    /// (weights then bias, the file's layout), one per conv2d, linear and batch norm layer of a <see cref="SequentialNetwork"/>,
    /// one per level of a <see cref="DagNetwork"/> whose levels share no parameter, one per submodule of a
    /// <see cref="TorchScriptNetwork"/> (its parameters sharing a name prefix).
    /// </summary>
    /// <exception cref="LandscapeInputException">
    /// The model has no layers of its own: a DAG with a parameter label shared by two levels (no level owns it), or a module
    /// given in C# (<see cref="ModuleModel"/>), whose parameters' names are not kept.
    /// </exception>
    public static IReadOnlyList<ParameterBlock> Of(IDifferentiableModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model is NetworkModel network
            ? Of(network.Network)
            : throw new LandscapeInputException("per-layer blocks are defined for the project's MLPs, sequential networks, DAGs and TorchScript files; this model is a module given in C#, whose parameters' names are not kept");
    }

    /// <summary>The blocks of <paramref name="network"/> (see <see cref="Of(IDifferentiableModel)"/>).</summary>
    /// <exception cref="LandscapeInputException">The network is not an MLP, a sequential network or a DAG whose levels share no parameter.</exception>
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
            case DagNetwork dag:
                return Levels(dag);
            case TorchScriptNetwork script:
                return Modules(script);
            default:
                throw new LandscapeInputException($"per-layer blocks are defined for MLPs, sequential networks and DAGs, not for a {network.GetType().Name}");
        }
    }

    /// <summary>
    /// A DAG's blocks, one per level (the length of the longest path from an input): the labels of the edges into the level's
    /// vertices and of their biases. Defined when no label is shared by two levels; unused labels belong to no block.
    /// </summary>
    private static IReadOnlyList<ParameterBlock> Levels(DagNetwork dag)
    {
        int p = dag.InputDim;
        var level = new int[p + dag.Vertices.Count];
        Array.Fill(level, -1, p, dag.Vertices.Count);
        var incoming = dag.Edges.GroupBy(e => e.To).ToDictionary(g => g.Key, g => g.ToArray());
        // The longest path from an input, memoised (the network is acyclic, checked when it was built); inputs are level 0.
        int Level(int v)
        {
            if (level[v] < 0)
            {
                level[v] = incoming.TryGetValue(v, out var edges) && edges.Length > 0 ? edges.Max(e => Level(e.From)) + 1 : 1;
            }
            return level[v];
        }
        for (int v = p; v < level.Length; v++)
        {
            Level(v);
        }
        var owner = new Dictionary<int, int>();
        void Claim(int label, int at)
        {
            if (owner.TryGetValue(label, out int other) && other != at)
            {
                throw new LandscapeInputException(Invariant($"a DAG whose parameter {label} is shared by levels {Math.Min(other, at)} and {Math.Max(other, at)} has no per-layer blocks: no level owns it"));
            }
            owner[label] = at;
        }
        foreach (var e in dag.Edges)
        {
            Claim(e.Parameter, level[e.To]);
        }
        for (int k = 0; k < dag.Vertices.Count; k++)
        {
            if (dag.Vertices[k].Bias is { } bias)
            {
                Claim(bias, level[p + k]);
            }
        }
        return owner.GroupBy(pair => pair.Value).OrderBy(g => g.Key).Select((g, k) =>
        {
            var labels = g.Select(pair => pair.Key).Order().ToArray();
            int vertices = Enumerable.Range(p, dag.Vertices.Count).Count(v => level[v] == g.Key);
            return new ParameterBlock(k, Invariant($"level {g.Key} ({vertices} vertices, {labels.Length} parameters)"), LayerKind.Level, labels[0], labels.Length, vertices, 0, 1)
            {
                Scattered = labels,
            };
        }).ToArray();
    }

    /// <summary>
    /// A TorchScript network's blocks: its parameters in <c>named_parameters()</c> order, consecutive ones of the same submodule
    /// (<see cref="Prefix"/>) in one block.
    /// </summary>
    private static IReadOnlyList<ParameterBlock> Modules(TorchScriptNetwork script)
    {
        var blocks = new List<ParameterBlock>();
        int offset = 0, k = 0;
        var parameters = script.Parameters;
        for (int i = 0; i < parameters.Count;)
        {
            string prefix = Prefix(parameters[i].Name);
            int j = i;
            while (j < parameters.Count && Prefix(parameters[j].Name) == prefix)
            {
                j++;
            }
            var members = parameters.Skip(i).Take(j - i).ToArray();
            int count = checked((int)members.Sum(m => m.Count));
            string shapes = string.Join(", ", members.Select(m => $"{m.Name} [{string.Join(", ", m.Shape)}]"));
            blocks.Add(new ParameterBlock(k++, Invariant($"module {prefix} ({shapes})"), LayerKind.Module, offset, count,
                members[0].Shape.Count > 0 ? (int)members[0].Shape[0] : 1, 0, 1));
            offset += count;
            i = j;
        }
        return blocks;
    }

    /// <summary>
    /// The submodule a parameter belongs to: its name up to the last dot (PyTorch's <c>conv1.weight</c>); for a name without
    /// one, the name less a trailing <c>_weight</c> or <c>_bias</c> (<c>landscape export</c>'s <c>layer1_weight</c>).
    /// </summary>
    private static string Prefix(string name)
    {
        int dot = name.LastIndexOf('.');
        if (dot >= 0)
        {
            return name[..dot];
        }
        foreach (var suffix in new[] { "_weight", "_bias" })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal))
            {
                return name[..^suffix.Length];
            }
        }
        return name;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
