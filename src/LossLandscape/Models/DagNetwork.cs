using LossLandscape.Models.Activations;
using static TorchSharp.torch;
using LossLandscape.Engine;

namespace LossLandscape.Models;

/// <summary>The role of a non-input vertex of a <see cref="DagNetwork"/>.</summary>
public enum DagVertexKind
{
    /// <summary>An internal vertex: o_v = σ(Σ_{u→v} p_{π(u→v)} o_u + p_{π(v)}).</summary>
    Hidden,

    /// <summary>An output vertex: linear, o_v = Σ_{u→v} p_{π(u→v)} o_u + p_{π(v)}; no outgoing edges.</summary>
    Output,
}

/// <summary>A non-input vertex: its kind, the label π(v) of its bias (or none) and, when hidden, σ.</summary>
/// <param name="Kind">Hidden or output.</param>
/// <param name="Bias">π(v), the index in p of its bias; <c>null</c> for a vertex without a bias.</param>
/// <param name="Activation">σ of a hidden vertex; <c>null</c> for an output (outputs are linear: <see cref="DagNetwork"/> refuses one with an activation).</param>
public sealed record DagVertex(DagVertexKind Kind, int? Bias, Activation? Activation = null);

/// <summary>An edge u → v whose weight is p_{π(u→v)}.</summary>
/// <param name="From">The source vertex id (inputs are 0..p−1).</param>
/// <param name="To">The target vertex id (a hidden or output vertex).</param>
/// <param name="Parameter">π(u→v), the index in p of its weight.</param>
public sealed record DagEdge(int From, int To, int Parameter);

/// <summary>
/// A general feedforward network exactly as Section 3 of the paper defines it: a DAG G(V, E), a
/// labelling π: E ∪ V → {0..m−1} that may give several edges or vertices the same parameter
/// (shared weights), σ at internal vertices and linear output vertices.
/// </summary>
/// <remarks>
/// Vertex ids: 0..p−1 are the input vertices (the coordinates of the scaled input); the
/// <see cref="Vertices"/> list follows, vertex <c>p + k</c> being its k-th entry. The outputs, in
/// the order they appear in that list, give f_p(x) ∈ ℝ^ℓ. Evaluation is batched by level (the length
/// of the longest path from an input): one gather, one matrix product and one activation per level,
/// never a loop over vertices.
/// </remarks>
public sealed class DagNetwork : FeedforwardNetwork
{
    private readonly DagVertex[] _vertices;
    private readonly DagEdge[] _edges;
    private readonly Level[] _levels;
    private readonly Tensor _outputColumns;

    /// <summary>Builds and validates the DAG; throws <see cref="ArgumentException"/> naming the fault.</summary>
    public DagNetwork(int inputDim, IReadOnlyList<DagVertex> vertices, IReadOnlyList<DagEdge> edges, int parameterCount)
    {
        if (inputDim < 1)
        {
            throw new LandscapeInputException("a DAG network needs at least one input vertex", nameof(inputDim));
        }
        ArgumentNullException.ThrowIfNull(vertices);
        ArgumentNullException.ThrowIfNull(edges);
        _vertices = vertices.ToArray();
        _edges = edges.ToArray();
        InputDim = inputDim;
        ParameterCount = parameterCount;
        int total = inputDim + _vertices.Length;
        for (int v = 0; v < _vertices.Length; v++)
        {
            if (_vertices[v].Kind == DagVertexKind.Output && _vertices[v].Activation is { } sigma)
            {
                throw new LandscapeInputException($"output vertex {inputDim + v} has activation '{sigma.Name}'; outputs are linear");
            }
        }
        var preds = Enumerable.Range(0, total).Select(_ => new List<int>()).ToArray();
        var succs = Enumerable.Range(0, total).Select(_ => new List<int>()).ToArray();
        for (int e = 0; e < _edges.Length; e++)
        {
            var edge = _edges[e];
            if (edge.From < 0 || edge.From >= total || edge.To < 0 || edge.To >= total)
            {
                throw new LandscapeInputException($"edge {e} ({edge.From}→{edge.To}) names a vertex outside 0..{total - 1}");
            }
            if (edge.To < inputDim)
            {
                throw new LandscapeInputException($"edge {e} ({edge.From}→{edge.To}) enters input vertex {edge.To}");
            }
            if (edge.From >= inputDim && _vertices[edge.From - inputDim].Kind == DagVertexKind.Output)
            {
                throw new LandscapeInputException($"edge {e} ({edge.From}→{edge.To}) leaves output vertex {edge.From}; outputs have no outgoing edges");
            }
            CheckLabel(edge.Parameter, $"edge {e}");
            preds[edge.To].Add(e);
            succs[edge.From].Add(edge.To);
        }
        for (int k = 0; k < _vertices.Length; k++)
        {
            var v = _vertices[k];
            if (v.Bias is { } b)
            {
                CheckLabel(b, $"vertex {inputDim + k}");
            }
            if (v.Kind == DagVertexKind.Hidden && v.Activation is null)
            {
                throw new LandscapeInputException($"hidden vertex {inputDim + k} has no activation");
            }
        }
        OutputDim = _vertices.Count(v => v.Kind == DagVertexKind.Output);
        if (OutputDim == 0)
        {
            throw new LandscapeInputException("a DAG network needs at least one output vertex");
        }

        // Levels by Kahn's algorithm: level(input) = 0, level(v) = 1 + max over predecessors.
        var level = new int[total];
        var indegree = new int[total];
        for (int v = 0; v < total; v++)
        {
            indegree[v] = preds[v].Count;
        }
        var queue = new Queue<int>(Enumerable.Range(0, total).Where(v => indegree[v] == 0));
        int seen = 0;
        while (queue.Count > 0)
        {
            int u = queue.Dequeue();
            seen++;
            if (u >= inputDim && level[u] == 0)
            {
                level[u] = 1;
            }
            foreach (int v in succs[u])
            {
                level[v] = Math.Max(level[v], level[u] + 1);
                if (--indegree[v] == 0)
                {
                    queue.Enqueue(v);
                }
            }
        }
        if (seen != total)
        {
            throw new LandscapeInputException("the graph has a cycle; a feedforward network needs a DAG");
        }

        // Column of each vertex in the value table: inputs, then level 1, level 2, ...
        var column = new long[total];
        for (int v = 0; v < inputDim; v++)
        {
            column[v] = v;
        }
        long next = inputDim;
        int depth = _vertices.Length == 0 ? 0 : Enumerable.Range(inputDim, _vertices.Length).Max(v => level[v]);
        var levels = new List<Level>();
        for (int lv = 1; lv <= depth; lv++)
        {
            var members = Enumerable.Range(inputDim, _vertices.Length).Where(v => level[v] == lv).ToArray();
            foreach (int v in members)
            {
                column[v] = next++;
            }
            levels.Add(BuildLevel(members, preds, column));
        }
        _levels = levels.ToArray();
        _outputColumns = Index(Enumerable.Range(inputDim, _vertices.Length)
            .Where(v => _vertices[v - inputDim].Kind == DagVertexKind.Output)
            .Select(v => column[v]));
    }

    /// <inheritdoc />
    public override int InputDim { get; }

    /// <inheritdoc />
    public override int OutputDim { get; }

    /// <inheritdoc />
    public override int ParameterCount { get; }

    /// <summary>The non-input vertices; vertex id = <see cref="InputDim"/> + index.</summary>
    public IReadOnlyList<DagVertex> Vertices => _vertices;

    /// <summary>The edges.</summary>
    public IReadOnlyList<DagEdge> Edges => _edges;

    /// <summary>The number of levels (the depth of the DAG).</summary>
    public int Depth => _levels.Length;

    /// <inheritdoc />
    public override IReadOnlyList<Activation> DistinctActivations =>
        _vertices.Where(v => v.Kind == DagVertexKind.Hidden).Select(v => v.Activation!).Distinct().ToArray();

    /// <summary>
    /// The DAG of an <see cref="Mlp"/>, with π chosen so that the same flat vector p gives the same
    /// function: edge (input i → unit o) of layer k is labelled with the index of W_k[o, i] in p.
    /// </summary>
    public static DagNetwork FromMlp(Mlp mlp)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        var vertices = new List<DagVertex>();
        var edges = new List<DagEdge>();
        var previous = Enumerable.Range(0, mlp.InputDim).ToArray();
        int nextId = mlp.InputDim;
        foreach (var layer in mlp.Layers)
        {
            var current = new int[layer.Out];
            for (int o = 0; o < layer.Out; o++)
            {
                current[o] = nextId++;
                vertices.Add(new DagVertex(layer.Activation is null ? DagVertexKind.Output : DagVertexKind.Hidden, layer.BiasOffset + o, layer.Activation));
                for (int i = 0; i < layer.In; i++)
                {
                    edges.Add(new DagEdge(previous[i], current[o], layer.WeightOffset + (o * layer.In) + i));
                }
            }
            previous = current;
        }
        return new DagNetwork(mlp.InputDim, vertices, edges, mlp.ParameterCount) { Scaling = mlp.Scaling };
    }

    /// <inheritdoc />
    protected override Tensor ForwardScaled(Tensor parameters, Tensor scaledInputs)
    {
        var values = scaledInputs;
        foreach (var level in _levels)
        {
            var (_, output) = Evaluate(level, parameters, values);
            values = cat([values, output], 1);
        }
        return values.index_select(1, _outputColumns);
    }

    /// <summary>
    /// Per-sample gradients by a batched reverse sweep over the levels with the adjoint
    /// G = ∂f/∂o ∈ ℝ^{d×ℓ×|V|}: δ_v = G_v ⊙ σ'(z_v) (1 at outputs), then
    /// ∂f/∂p_{π(u→v)} += δ_v o_u, ∂f/∂p_{π(v)} += δ_v and G_u += Σ_v δ_v p_{π(u→v)}.
    /// Shared labels accumulate by index_add.
    /// </summary>
    protected override void AccumulateJacobian(Tensor parameters, Tensor scaledInputs, Tensor jacobian)
    {
        long d = scaledInputs.shape[0];
        int l = OutputDim;
        var values = scaledInputs;
        var pre = new Tensor[_levels.Length];
        var gathered = new Tensor[_levels.Length];
        var weights = new Tensor[_levels.Length];
        for (int k = 0; k < _levels.Length; k++)
        {
            gathered[k] = values.index_select(1, _levels[k].Sources);
            weights[k] = LevelWeights(_levels[k], parameters);
            var (z, output) = Evaluate(_levels[k], parameters, values);
            pre[k] = z;
            values = cat([values, output], 1);
        }
        var adjoint = zeros(d, l, values.shape[1], dtype: parameters.dtype);
        for (int j = 0; j < l; j++)
        {
            ScalarArithmetic.WithScalar(1.0, one => adjoint.select(1, j).select(1, _outputColumns[j].item<long>()).fill_(one));
        }
        var jac = jacobian.view(d, l, ParameterCount);
        for (int k = _levels.Length - 1; k >= 0; k--)
        {
            var level = _levels[k];
            var delta = adjoint.narrow(2, level.FirstColumn, level.Size).clone();
            foreach (var (activation, members) in level.Groups)
            {
                var slope = activation.Derivative(pre[k].index_select(1, members)).unsqueeze(1);
                delta.index_copy_(2, members, delta.index_select(2, members).mul_(slope));
            }
            if (level.EdgeLabels.shape[0] > 0)
            {
                var perEdge = delta.index_select(2, level.EdgeTargets).mul_(gathered[k].index_select(1, level.EdgeSources).unsqueeze(1));
                ScalarArithmetic.WithScalar(1.0, one => jac.index_add_(2, level.EdgeLabels, perEdge, one));
            }
            if (level.BiasLabels.shape[0] > 0)
            {
                ScalarArithmetic.WithScalar(1.0, one => jac.index_add_(2, level.BiasLabels, delta.index_select(2, level.BiasVertices), one));
            }
            ScalarArithmetic.WithScalar(1.0, one => adjoint.index_add_(2, level.Sources, delta.matmul(weights[k]), one));
        }
    }

    private (Tensor PreActivation, Tensor Output) Evaluate(Level level, Tensor parameters, Tensor values)
    {
        var z = values.index_select(1, level.Sources).matmul(LevelWeights(level, parameters).t());
        if (level.BiasLabels.shape[0] > 0)
        {
            var bias = ScalarArithmetic.WithScalar(1.0, one => zeros(level.Size, dtype: parameters.dtype).index_add(0, level.BiasVertices, parameters.index_select(0, level.BiasLabels), one));
            z = z.Plus(bias);
        }
        var output = z;
        foreach (var (activation, members) in level.Groups)
        {
            output = output.index_copy(1, members, activation.Apply(z.index_select(1, members)));
        }
        return (z, output);
    }

    /// <summary>The level's dense weight matrix (|V_l| × |sources|), W[v, u] = Σ_{e: u→v} p_{π(e)}.</summary>
    private static Tensor LevelWeights(Level level, Tensor parameters) =>
        ScalarArithmetic.WithScalar(1.0, one => zeros(level.Size * level.SourceCount, dtype: parameters.dtype)
            .index_add(0, level.EdgeFlatPositions, parameters.index_select(0, level.EdgeLabels), one))
            .view(level.Size, level.SourceCount);

    private Level BuildLevel(int[] members, List<int>[] preds, long[] column)
    {
        var local = members.Select((v, i) => (v, i)).ToDictionary(t => t.v, t => t.i);
        var incoming = members.SelectMany(v => preds[v]).ToArray();
        var sourceColumns = incoming.Select(e => column[_edges[e].From]).Distinct().Order().ToArray();
        var sourceIndex = sourceColumns.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i);
        var edgeTargets = incoming.Select(e => (long)local[_edges[e].To]).ToArray();
        var edgeSources = incoming.Select(e => (long)sourceIndex[column[_edges[e].From]]).ToArray();
        var biasVertices = members.Select((v, i) => (v, i)).Where(t => _vertices[t.v - InputDim].Bias is not null).ToArray();
        var groups = members.Select((v, i) => (v, i))
            .Where(t => _vertices[t.v - InputDim].Kind == DagVertexKind.Hidden)
            .GroupBy(t => _vertices[t.v - InputDim].Activation!)
            .Select(g => (g.Key, Index(g.Select(t => (long)t.i))))
            .ToArray();
        return new Level(
            FirstColumn: column[members[0]],
            Size: members.Length,
            SourceCount: sourceColumns.Length,
            Sources: Index(sourceColumns),
            EdgeTargets: Index(edgeTargets),
            EdgeSources: Index(edgeSources),
            EdgeLabels: Index(incoming.Select(e => (long)_edges[e].Parameter)),
            EdgeFlatPositions: Index(edgeTargets.Zip(edgeSources, (t, s) => (t * sourceColumns.Length) + s)),
            BiasVertices: Index(biasVertices.Select(t => (long)t.i)),
            BiasLabels: Index(biasVertices.Select(t => (long)_vertices[t.v - InputDim].Bias!.Value)),
            Groups: groups);
    }

    /// <summary>An int64 index tensor owned by the network, outside any caller's dispose scope.</summary>
    private static Tensor Index(IEnumerable<long> values) => tensor(values.ToArray(), dtype: int64).DetachFromDisposeScope();

    private void CheckLabel(int label, string owner)
    {
        if (label < 0 || label >= ParameterCount)
        {
            throw new LandscapeInputException($"{owner} is labelled with parameter {label}, outside 0..{ParameterCount - 1}");
        }
    }

    /// <summary>One level: its vertices occupy value columns FirstColumn..FirstColumn+Size−1.</summary>
    private sealed record Level(
        long FirstColumn,
        int Size,
        int SourceCount,
        Tensor Sources,
        Tensor EdgeTargets,
        Tensor EdgeSources,
        Tensor EdgeLabels,
        Tensor EdgeFlatPositions,
        Tensor BiasVertices,
        Tensor BiasLabels,
        (Activation Activation, Tensor Members)[] Groups);
}
