using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Problem;

/// <summary>How the Jacobian is computed.</summary>
public enum JacobianMethod
{
    /// <summary>The batched path where the model supports it (the project's networks), else autograd.</summary>
    Auto,

    /// <summary>Per-sample gradients in a few batched tensor operations (<see cref="FeedforwardNetwork.Jacobian"/>).</summary>
    Batched,

    /// <summary>One reverse-mode pass per row of J; works for any model (<see cref="AutogradJacobian"/>).</summary>
    Autograd,
}

/// <summary>
/// The residual map of the paper, H: ℝⁿ → ℝ^{ℓd}, H(p) = (f_p(xᵢ) − yᵢ)ᵢ, and the loss
/// L = Σ_k |H_k|^a (a ≥ 1; a = 2 is the squared loss of Section 2.1, a = 1 that of Remark 2.2).
/// Its zero set M = H⁻¹(0) = L⁻¹(0) is the locus of global minima.
/// </summary>
/// <remarks>
/// H is flattened sample-major: entry i·ℓ + j is f_j(xᵢ) − y_{ij}, and row i·ℓ + j of the Jacobian
/// J = ∂H/∂p ∈ ℝ^{ℓd×n} is ∂f_j(xᵢ)/∂p. Every quantity is accumulated over batches of rows, and does
/// not depend on the batch size beyond floating-point summation order. The map holds the data as tensors: dispose it
/// (or let a <c>using</c> do so) when done; the model and the dataset are not disposed.
/// </remarks>
public sealed class ResidualMap : IResidualProblem, IDisposable
{
    private readonly Tensor? _inputs;
    private readonly Tensor? _targets;
    private readonly double _maxAbsTarget;
    private readonly long _meanRows;
    private readonly long[] _rowShape;
    private bool _disposed;
    private bool _gradientGraphReuse = true;
    private GradientGraph? _gradientGraph;

    /// <summary>
    /// Binds a model to rows of data. Rows held in memory (<see cref="IDataSource.Resident"/>, a <see cref="Dataset"/>) are
    /// copied into tensors once; any other source is read batch by batch at every evaluation, so that no evaluation
    /// holds more than one batch of its rows.
    /// </summary>
    /// <param name="model">The model; its current leaves are the point p.</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs, p values per row as the model takes (in any shape: they are handed to the model in <see cref="IDifferentiableModel.InputShape"/>).</param>
    /// <param name="exponent">a ≥ 1 in L = Σ|H_k|^a; default 2.</param>
    /// <param name="batchSize">Rows per batch; default: what the default memory budget holds (<see cref="DefaultBatchSize"/>).</param>
    /// <param name="cancellation">The map's <see cref="Cancellation"/>, checked before every batch; default none.</param>
    public ResidualMap(IDifferentiableModel model, IDataSource data, double exponent = 2.0, int? batchSize = null, CancellationToken cancellation = default)
        : this(model, data, LossFunction.Squared(exponent), batchSize, cancellation)
    {
    }

    /// <summary>Binds a model to rows of data under <paramref name="loss"/> (see the other constructor for the rest).</summary>
    /// <param name="model">The model; its current leaves are the point p.</param>
    /// <param name="data">The rows, as for the other constructor.</param>
    /// <param name="loss">The loss: squared (the paper's, with its exponent), mean squared error or cross-entropy.</param>
    /// <param name="batchSize">Rows per batch; default: what the default memory budget holds (<see cref="DefaultBatchSize"/>).</param>
    /// <param name="cancellation">The map's <see cref="Cancellation"/>, checked before every batch; default none.</param>
    /// <param name="meanRows">
    /// The d a mean loss (mse, cross-entropy) divides by: default the rows of <paramref name="data"/>; a shard of a sharded
    /// problem gives the whole problem's, so that the shards' sums add up to its L.
    /// </param>
    public ResidualMap(IDifferentiableModel model, IDataSource data, LossFunction loss, int? batchSize = null, CancellationToken cancellation = default, int? meanRows = null)
    {
        ArgumentNullException.ThrowIfNull(loss);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        if (data.InputDim != model.InputDim)
        {
            throw new LandscapeInputException(data.InputShape.Count > 1 || model.InputShape.Count > 1
                ? $"the data's rows have shape [{string.Join(", ", data.InputShape)}] ({data.InputDim} values), the model takes [{string.Join(", ", model.InputShape)}] ({model.InputDim} values)"
                : $"the data has {data.InputDim} input columns, the model takes {model.InputDim}");
        }
        if (data.OutputDim != model.OutputDim)
        {
            throw new LandscapeInputException($"the data has {data.OutputDim} targets per row, the model has {model.OutputDim} outputs");
        }
        if (batchSize is < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the batch size must be positive, got {batchSize}"), nameof(batchSize));
        }
        TorchRuntime.EnsureInitialized();
        Model = model;
        Data = data;
        LossFunction = loss;
        _meanRows = meanRows ?? data.Count;
        BatchSize = batchSize ?? DefaultBatchSize(model, data.Count);
        Cancellation = cancellation;
        _rowShape = model.InputShape.ToArray();
        _maxAbsTarget = data.MaxAbsTarget();
        if (data.Resident)
        {
            var (x, y) = data.Read(0, data.Count);
            _inputs = x.reshape([data.Count, .. _rowShape]).DetachFromDisposeScope();
            _targets = y.DetachFromDisposeScope();
        }
    }

    /// <summary>
    /// Float64 values a batch's autograd graph holds per row and per unit of the network (an input, a hidden unit or an
    /// output): the forward activation, its derivative, and the copies of both the double-backward product
    /// (<c>create_graph</c>) keeps, twice over for the product's own graph: 8, a chosen bound rather than a derived one.
    /// </summary>
    public const int ValuesPerUnit = 8;

    /// <summary>
    /// The share of the memory budget one batch's graph may take: a quarter, the rest being the estimators' own (Krylov
    /// bases, dense matrices, factorizations), which are checked against the budget where they are allocated.
    /// </summary>
    public const int BudgetShare = 4;

    /// <summary>
    /// The default rows per batch: as many as a batch's graph fits in a quarter of the memory budget of <paramref name="limits"/>
    /// (<see cref="BudgetShare"/>) at <see cref="ValuesPerUnit"/> float64 values per unit and row, the units being the
    /// inputs, every layer's outputs (an MLP, a sequential network) or every vertex (a DAG); for any other module the inputs, the outputs and √n.
    /// All rows when they fit, as with the data sets shipped; at least 1.
    /// </summary>
    public static int DefaultBatchSize(IDifferentiableModel model, int rows, RunLimits? limits = null)
    {
        long budgetBytes = (limits ?? RunLimits.Default).MemoryBudgetBytes;
        ArgumentNullException.ThrowIfNull(model);
        long units = model switch
        {
            NetworkModel { Network: Mlp mlp } => model.InputDim + mlp.Layers.Sum(layer => (long)layer.Out),
            NetworkModel { Network: DagNetwork dag } => model.InputDim + dag.Vertices.Count,
            NetworkModel { Network: SequentialNetwork seq } => model.InputDim + seq.Units,
            _ => model.InputDim + model.OutputDim + (long)Math.Ceiling(Math.Sqrt(model.ParameterCount)),
        };
        long perRow = checked(sizeof(double) * ValuesPerUnit * Math.Max(1, units));
        return (int)Math.Clamp(budgetBytes / BudgetShare / perRow, 1, Math.Max(1, rows));
    }

    /// <summary>The model.</summary>
    public IDifferentiableModel Model { get; }

    /// <summary>The data.</summary>
    public IDataSource Data { get; }

    /// <summary>The exponent a of L = Σ|H_k|^a.</summary>
    public double Exponent => LossFunction.ResidualExponent;

    /// <inheritdoc/>
    public LossFunction LossFunction { get; }

    /// <summary>Rows per batch.</summary>
    public int BatchSize { get; }

    /// <summary>The number of constraints ℓd (the codimension of M at a regular point).</summary>
    public int Constraints => Data.Count * Data.OutputDim;

    /// <summary>The number of parameters n.</summary>
    public int ParameterCount => Model.ParameterCount;

    /// <inheritdoc/>
    public int Rows => Data.Count;

    /// <inheritdoc/>
    public int Outputs => Data.OutputDim;

    /// <inheritdoc/>
    public double MaxAbsTarget => _maxAbsTarget;

    /// <inheritdoc/>
    public Tensor GetPoint() => ParameterVector.Get(Model);

    /// <inheritdoc/>
    /// <remarks>A graph of ∇L kept for Hessian products (<see cref="ReusesGradientGraph"/>) is released.</remarks>
    public void SetPoint(Tensor point)
    {
        DropGradientGraph();
        ParameterVector.Set(Model, point);
    }

    /// <summary>H(p) ∈ ℝ^{ℓd} at the model's current point (detached).</summary>
    public Tensor Residuals()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long l = Outputs;
        var result = empty(Constraints, dtype: float64);
        foreach (var b in Batches())
        {
            using var batchScope = NewDisposeScope(); // a batch's rows and activations go with it: memory set by B, not d
            result.narrow(0, b.Start * l, b.Count * l).copy_(BatchResiduals(b).reshape(-1));
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>L(p) = Σ_k |H_k(p)|^a at the model's current point.</summary>
    public double Loss()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double total = 0;
        foreach (var b in Batches())
        {
            using var batchScope = NewDisposeScope();
            total += BatchLoss(b).item<double>();
        }
        return total;
    }

    /// <summary>∇L(p) ∈ ℝⁿ, by reverse mode, accumulated over batches.</summary>
    /// <remarks>For a = 1 the gradient at H_k = 0 is taken as 0 (the subgradient autograd gives |·| at 0).</remarks>
    public Tensor Gradient() => LossAndGradient().Gradient;

    /// <inheritdoc/>
    /// <remarks>One forward and one backward pass per batch; L and ∇L accumulated over the batches.</remarks>
    public (double Loss, Tensor Gradient) LossAndGradient()
    {
        using var scope = NewDisposeScope();
        var total = zeros(ParameterCount, dtype: float64);
        double loss = 0;
        var leaves = Model.Leaves.ToArray();
        foreach (var b in Batches())
        {
            using var batchScope = NewDisposeScope();
            var value = BatchLoss(b);
            loss += value.item<double>();
            var grads = autograd.grad([value], leaves, allow_unused: true);
            total.PlusInPlace(ParameterVector.Flatten(grads.ToArray(), Model.Leaves));
        }
        return (loss, total.MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    public (double Loss, Tensor Gradient) RowsLossAndGradient(long[] rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ObjectDisposedException.ThrowIf(_disposed, this);
        Cancellation.ThrowIfCancellationRequested();
        using var scope = NewDisposeScope();
        if (rows.Length == 0)
        {
            return (0.0, zeros(ParameterCount, dtype: float64).MoveToOuterDisposeScope());
        }
        Tensor x, y;
        if (_inputs is not null && _targets is not null)
        {
            var index = tensor(rows, dtype: int64);
            (x, y) = (_inputs.index_select(0, index), _targets.index_select(0, index));
        }
        else
        {
            (x, y) = Data.ReadRows(rows);
            x = x.reshape([rows.Length, .. _rowShape]);
        }
        var value = LossFunction.Value(Model.Forward(x), y, _meanRows);
        var grads = autograd.grad([value], Model.Leaves.ToArray(), allow_unused: true);
        return (value.item<double>(), ParameterVector.Flatten(grads.ToArray(), Model.Leaves).MoveToOuterDisposeScope());
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Pearlmutter: ∇²L v = ∇⟨∇L, v⟩, by double backward, batch by batch. When all rows are one batch and
    /// <see cref="GradientGraphReuse"/> is on (<see cref="ReusesGradientGraph"/>), the graph of ∇L built with
    /// <c>create_graph</c> is kept between calls and each product is one backward pass through it, as PyHessian does; it is
    /// rebuilt whenever the point differs from the one it was built at (<see cref="GradientGraph"/>). Otherwise every call
    /// rebuilds each batch's graph, so that no more than one batch's graph is ever held.
    /// </remarks>
    public Tensor HessianTimes(Tensor block)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (ReusesGradientGraph)
        {
            return ReusedGraphTimes(block);
        }
        using var scope = NewDisposeScope();
        var leaves = Model.Leaves.ToArray();
        var result = zeros(ParameterCount, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        foreach (var batch in Batches())
        {
            using var batchScope = NewDisposeScope();
            var gradient = autograd.grad([BatchLoss(batch)], leaves, retain_graph: true, create_graph: true, allow_unused: true);
            AddGradientProducts(gradient, leaves, block, result);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether Hessian products may keep the gradient's graph between calls (PyHessian's way): on by default. It is used
    /// only when every row is in one batch (<see cref="ReusesGradientGraph"/>); off, every product rebuilds the graph.
    /// </summary>
    public bool GradientGraphReuse
    {
        get => _gradientGraphReuse;
        set
        {
            _gradientGraphReuse = value;
            if (!value)
            {
                DropGradientGraph();
            }
        }
    }

    /// <summary>
    /// Whether <see cref="HessianTimes"/> keeps the graph of ∇L between calls: <see cref="GradientGraphReuse"/> is on and the
    /// data is one batch (<see cref="BatchSize"/> ≥ <see cref="Rows"/>). The one batch is the memory rule: the default batch
    /// size is what one graph may take of the budget (<see cref="DefaultBatchSize"/>), so a graph of all rows that is held
    /// between calls takes no more than the one batch a rebuilding product holds during each call; a smaller batch size
    /// asks for memory bounded by the batch, and then nothing is held.
    /// </summary>
    /// <remarks>
    /// The graph is built at a private copy of p through the network's own forward pass, so it is kept only for the
    /// project's networks (<see cref="NetworkModel"/>: MLPs, DAGs, sequential networks, TorchScript modules); a module
    /// bound through <see cref="ModuleModel"/> computes with its own parameters, and its products rebuild the graph.
    /// </remarks>
    public bool ReusesGradientGraph => _gradientGraphReuse && BatchSize >= Rows && Model is NetworkModel;

    /// <summary>∇²L V through the kept graph of ∇L, built first where there is none or the point moved.</summary>
    private Tensor ReusedGraphTimes(Tensor block)
    {
        using var scope = NewDisposeScope();
        var network = (NetworkModel)Model;
        var point = network.Parameters.detach(); // compared as it is, copied only when a graph is built at it
        if (_gradientGraph is null || !_gradientGraph.IsAt(point))
        {
            DropGradientGraph();
            _gradientGraph = GradientGraph.Build(this, network, point);
        }
        var result = zeros(ParameterCount, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        AddGradientProducts(_gradientGraph.Gradient, [_gradientGraph.Leaf], block, result);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Adds ∇⟨g, vⱼ⟩ to column j of <paramref name="result"/> for each column vⱼ of <paramref name="block"/>, g a gradient built with <c>create_graph</c>.</summary>
    private void AddGradientProducts(IList<Tensor> gradient, Tensor[] leaves, Tensor block, Tensor result)
    {
        for (long j = 0; j < block.shape[1]; j++)
        {
            Cancellation.ThrowIfCancellationRequested(); // one check per product, not per block: a block of 64 on digits takes seconds
            using var columnScope = NewDisposeScope();
            var dot = ModelDerivatives.Dot(gradient, ModelDerivatives.Split(block.select(1, j), leaves));
            if (dot is null)
            {
                continue; // ∇L_b does not depend on p: ∇²L_b = 0.
            }
            var hv = autograd.grad([dot], leaves, retain_graph: true, allow_unused: true);
            result.select(1, j).PlusInPlace(ModelDerivatives.FlattenGrad(hv, leaves));
        }
    }

    /// <summary>Releases the kept graph of ∇L, if any.</summary>
    private void DropGradientGraph()
    {
        _gradientGraph?.Dispose();
        _gradientGraph = null;
    }

    /// <summary>
    /// The graph of ∇L over all rows, built with <c>create_graph</c> at a private copy q of the point and kept between
    /// Hessian products. q is a leaf of its own, which nothing outside the graph can write, so the graph's saved tensors
    /// never go stale under it (autograd refuses a saved tensor written in place, and a refusal inside a backward pass
    /// ends the process); it is used only while the model's point equals q exactly (one pass over n values per call), so a
    /// point set through <see cref="SetPoint"/>, or written into the leaves by anything else (an optimizer stepping in
    /// place), makes the map build a new one.
    /// </summary>
    private sealed class GradientGraph : IDisposable
    {
        private GradientGraph(Tensor leaf, Tensor[] gradient)
        {
            Leaf = leaf;
            Gradient = gradient;
        }

        /// <summary>q, the private leaf the graph is built at.</summary>
        public Tensor Leaf { get; }

        /// <summary>∇L at q, in the graph of q (undefined where ∇L does not depend on q).</summary>
        public Tensor[] Gradient { get; }

        /// <summary>The graph at <paramref name="point"/>: one forward and one backward pass over all rows, through the network at q.</summary>
        public static GradientGraph Build(ResidualMap map, NetworkModel model, Tensor point)
        {
            var leaf = point.clone().requires_grad_(true).DetachFromDisposeScope();
            var (x, y) = map.BatchRows((0, map.Rows));
            var value = map.LossFunction.Value(model.Network.Forward(leaf, x), y, map._meanRows);
            var gradient = autograd.grad([value], [leaf], retain_graph: true, create_graph: true, allow_unused: true).ToArray();
            foreach (var g in gradient)
            {
                if (g is not null && !g.IsInvalid)
                {
                    g.DetachFromDisposeScope();
                }
            }
            return new GradientGraph(leaf, gradient);
        }

        /// <summary>Whether the graph was built at exactly this point.</summary>
        public bool IsAt(Tensor point)
        {
            using var scope = NewDisposeScope();
            return point.shape.SequenceEqual(Leaf.shape) && point.eq(Leaf.detach()).all().item<bool>();
        }

        public void Dispose()
        {
            foreach (var g in Gradient)
            {
                if (g is not null && !g.IsInvalid)
                {
                    g.Dispose();
                }
            }
            Leaf.Dispose();
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// G V = Σ_batches J_bᵀ (∂²ℓ/∂f² · J_b V), J the Jacobian of the outputs (that of H), ∂²ℓ/∂f² the loss's curvature in
    /// the outputs row by row (<see cref="Problem.LossFunction"/>: a(a − 1)|h|^{a−2} for squared, exactly 2 for a = 2 and 0 for a = 1;
    /// 2/(dℓ) for the mean squared error; (diag π − ππᵀ)/d for cross-entropy).
    /// </remarks>
    public Tensor GaussNewtonTimes(Tensor block)
    {
        ArgumentNullException.ThrowIfNull(block);
        using var scope = NewDisposeScope();
        var result = zeros(ParameterCount, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        if (LossFunction is { Kind: LossKind.Squared, Exponent: 1.0 })
        {
            return result.MoveToOuterDisposeScope(); // ℓ″ = a(a − 1)|h|^{a−2} = 0 wherever it is defined.
        }
        var leaves = Model.Leaves.ToArray();
        foreach (var batch in Batches())
        {
            using var batchScope = NewDisposeScope();
            var (x, y) = BatchRows(batch);
            var outputs = Model.Forward(x);
            var (f, u, g) = ModelDerivatives.Linearize(outputs.reshape(-1), leaves);
            var jv = ModelDerivatives.JacobianTimes(u, g, leaves, block);
            var curvature = LossFunction.CurvatureTimes(outputs, y, jv, _meanRows);
            result.PlusInPlace(ModelDerivatives.JacobianTransposeTimes(f, leaves, curvature));
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    /// <remarks>Each batch's rows J_b V by the double-backward trick (a vector–Jacobian product differentiated in its cotangent).</remarks>
    public Tensor JacobianTimes(Tensor block)
    {
        ArgumentNullException.ThrowIfNull(block);
        using var scope = NewDisposeScope();
        var leaves = Model.Leaves.ToArray();
        long l = Outputs;
        var result = zeros(Constraints, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        foreach (var batch in Batches())
        {
            using var batchScope = NewDisposeScope();
            var (_, u, g) = ModelDerivatives.Linearize(BatchResiduals(batch).reshape(-1), leaves);
            result.narrow(0, batch.Start * l, batch.Count * l).copy_(ModelDerivatives.JacobianTimes(u, g, leaves, block));
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    /// <remarks>Σ_batches J_bᵀ W_b, W_b the batch's rows of W, by reverse mode.</remarks>
    public Tensor JacobianTransposeTimes(Tensor block)
    {
        ArgumentNullException.ThrowIfNull(block);
        using var scope = NewDisposeScope();
        var leaves = Model.Leaves.ToArray();
        long l = Outputs;
        var result = zeros(ParameterCount, block.shape[1], dtype: ScalarType.Float64, device: block.device);
        foreach (var batch in Batches())
        {
            using var batchScope = NewDisposeScope();
            var h = BatchResiduals(batch).reshape(-1);
            result.PlusInPlace(ModelDerivatives.JacobianTransposeTimes(h, leaves, block.narrow(0, batch.Start * l, batch.Count * l)));
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    Tensor IResidualProblem.Jacobian() => Jacobian();

    /// <inheritdoc/>
    /// <remarks>The MLP's factors over all rows at once (<see cref="Mlp.JacobianFactors"/>); null for any other model.</remarks>
    public IReadOnlyList<(Tensor Inputs, Tensor Deltas)>? GramFactors()
    {
        if (Model is not NetworkModel { Network: Mlp mlp } network)
        {
            return null;
        }
        ObjectDisposedException.ThrowIf(_disposed, this);
        Cancellation.ThrowIfCancellationRequested();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var inputs = _inputs ?? Data.Read(0, Data.Count).Inputs;
        return mlp.JacobianFactors(network.Parameters, inputs.reshape(Data.Count, -1))
            .Select(f => (f.Input.MoveToOuterDisposeScope(), f.Delta.reshape(-1, f.Delta.shape[^1]).MoveToOuterDisposeScope())).ToArray();
    }

    /// <summary>The exact Jacobian J = ∂H/∂p ∈ ℝ^{ℓd×n} at the model's current point.</summary>
    public Tensor Jacobian(JacobianMethod method = JacobianMethod.Auto)
    {
        var network = Model as NetworkModel;
        if (method == JacobianMethod.Batched && network is null)
        {
            throw new NotSupportedException("the batched Jacobian needs one of the project's networks; use JacobianMethod.Autograd for other models");
        }
        using var scope = NewDisposeScope();
        long l = Outputs;
        Tensor? jacobian = null;
        foreach (var b in Batches())
        {
            using var batchScope = NewDisposeScope();
            var x = BatchRows(b).Inputs;
            var rows = network is not null && method != JacobianMethod.Autograd
                ? network.Network.Jacobian(network.Parameters, x)
                : AutogradJacobian.Compute(Model, x);
            if (b.Count == Rows)
            {
                return rows.MoveToOuterDisposeScope().MoveToOuterDisposeScope(); // one batch: J is its rows
            }
            // Each batch's rows written into J in place, not concatenated at the end (which would hold J twice).
            jacobian ??= empty(Constraints, ParameterCount, dtype: float64).MoveToOuterDisposeScope();
            jacobian.narrow(0, b.Start * l, b.Count * l).copy_(rows);
        }
        return jacobian!.MoveToOuterDisposeScope();
    }

    /// <summary>H restricted to the rows of batch <paramref name="b"/>, a count × ℓ tensor in the autograd graph of the leaves.</summary>
    internal Tensor BatchResiduals((long Start, long Count) b)
    {
        var (x, y) = BatchRows(b);
        return Model.Forward(x) - y;
    }

    /// <summary>
    /// A token checked before every batch of every evaluation of the map (H, L, ∇L, J, and the Hessian, Gauss–Newton and
    /// Jacobian products built on them): once it is cancelled, the next evaluation throws
    /// <see cref="OperationCanceledException"/>. Given at construction (default none), for a map whose computation is
    /// abandoned once cancelled: it makes every estimator on the map (Lanczos, SLQ, Hutchinson, slices, certificates)
    /// stoppable within one batch's forward and backward pass; a computation that must keep a best point (training, the
    /// walk) is given the token in its <see cref="RunLimits"/> instead, and the map stays usable after it.
    /// </summary>
    public CancellationToken Cancellation { get; }

    /// <summary>The inputs (count × the model's row shape) and targets of batch <paramref name="b"/>: views of the map's tensors, or read from the source.</summary>
    private (Tensor Inputs, Tensor Targets) BatchRows((long Start, long Count) b)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Cancellation.ThrowIfCancellationRequested();
        if (_inputs is not null && _targets is not null)
        {
            return (_inputs.narrow(0, b.Start, b.Count), _targets.narrow(0, b.Start, b.Count));
        }
        var (x, y) = Data.Read(b.Start, b.Count);
        return (x.reshape([b.Count, .. _rowShape]), y);
    }

    /// <summary>The batch's share of L (<see cref="Problem.LossFunction.Value"/>), in the autograd graph of the leaves.</summary>
    internal Tensor BatchLoss((long Start, long Count) b)
    {
        var (x, y) = BatchRows(b);
        return LossFunction.Value(Model.Forward(x), y, _meanRows);
    }

    /// <summary>Releases the map's input and target tensors and any kept graph of ∇L (not the model, not the dataset).</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            DropGradientGraph();
            _inputs?.Dispose();
            _targets?.Dispose();
        }
    }

    /// <summary>The batches of rows: (first row, number of rows), covering the data in order.</summary>
    internal IEnumerable<(long Start, long Count)> Batches()
    {
        for (long start = 0; start < Data.Count; start += BatchSize)
        {
            yield return (start, Math.Min(BatchSize, Data.Count - start));
        }
    }
}
