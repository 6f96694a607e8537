using LossLandscape.Approximations;
using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using LossLandscape.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LossLandscape;

/// <summary>
/// The front door of the library: a model bound to a dataset, with one method for each question the paper asks of the
/// loss L = Σ_k |H_k|^a, H(p) = (f_p(xᵢ) − yᵢ)ᵢ ∈ ℝ^{ℓd}, at the model's current point p ∈ ℝⁿ.
/// </summary>
/// <remarks>
/// <para>Each method is one call of the library entry point that the <c>landscape</c> command of the same name calls
/// (<see cref="Certify"/> is <see cref="Certificate.Compute"/>, <see cref="Walk"/> is <see cref="ManifoldWalk.Run"/>, …), with
/// an immutable options record whose defaults are the command's, and returns that entry point's result record. The
/// options records are nested (<see cref="TraceOptions"/> is <c>Landscape.TraceOptions</c>), so that they never clash
/// with the estimators' own records they hand on (<see cref="Curvature.TraceOptions"/>); <c>new(…)</c> names them
/// for you: <c>landscape.Spectrum(new(K: 5))</c>.</para>
/// <para><see cref="Train"/> and <see cref="Walk"/> move the model: afterwards every method measures the point they
/// ended at (the best point of the run, the end of the walk). A <see cref="Landscape"/> is not thread-safe.</para>
/// <code>
/// var data = Landscape.LoadData("builtin:iris", TargetSpec.Classes("species"));
/// var module = nn.Sequential(("fc1", nn.Linear(4, 16)), ("tanh", nn.Tanh()), ("fc2", nn.Linear(16, 3)));
/// using var landscape = Landscape.For(module, data);
/// Console.WriteLine(landscape.Certify().Jacobian.Rank);
/// </code>
/// </remarks>
public sealed class Landscape : IDisposable
{
    private readonly IDisposable? _ownedModel;
    private bool _disposed;

    private Landscape(ResidualMap map, IDisposable? ownedModel)
    {
        Map = map;
        _ownedModel = ownedModel;
    }

    /// <summary>Options of <see cref="Trace"/>.</summary>
    /// <param name="Method">
    /// Default Hutch++, the default of <c>landscape trace --method</c>: for positive semi-definite A it reaches relative
    /// error ε with O(1/ε) products against Hutchinson's O(1/ε²) (Meyer et al. 2021).
    /// </param>
    /// <param name="Matrix">∇²L or 2JᵀJ; default ∇²L, the default of <c>landscape trace --operator</c>.</param>
    /// <param name="Estimator">
    /// Probe budget, tolerance and seed of the stochastic methods; default null: each estimator's own default (Hutchinson
    /// 100 probes, PyHessian; Hutch++ 99 products, see <see cref="Curvature.TraceOptions"/>). Ignored by <see cref="TraceMethod.Exact"/>.
    /// </param>
    public sealed record TraceOptions(TraceMethod Method = TraceMethod.HutchPlusPlus, CurvatureKind Matrix = CurvatureKind.Hessian, Curvature.TraceOptions? Estimator = null);

    /// <summary>Options of <see cref="Train"/>.</summary>
    /// <param name="MaxIterations">The most optimizer steps; default 100, the default of <c>landscape train --steps</c>.</param>
    /// <param name="TargetLoss">Stop once L ≤ this; default null: the float64 zero of L, <see cref="Trainer.RoundingFloor(LossLandscape.Problem.IResidualProblem)"/>.</param>
    /// <param name="Optimizer">
    /// A fresh optimizer for this run (it keeps state; the caller disposes it); default null: a new
    /// <see cref="GaussNewton"/> with its defaults, disposed after the run. Gauss–Newton / Levenberg–Marquardt is the
    /// method that reaches M (L at the float64 zero) when n ≥ ℓd and J has full rank, quadratically near M
    /// (<see cref="GaussNewton"/>'s remarks); the command's default is Adam, for large data.
    /// </param>
    public sealed record TrainOptions(int MaxIterations = 100, double? TargetLoss = null, Optimizer? Optimizer = null);

    /// <summary>Options of <see cref="Walk"/>: a random walk on M (<see cref="ManifoldWalk"/>).</summary>
    /// <param name="Steps">Number of steps; default 20, the default of <c>landscape walk --steps</c>.</param>
    /// <param name="StepSize">‖t‖ of each tangent step; default 0.05, the default of <c>landscape walk --step-size</c>.</param>
    /// <param name="Seed">Seed of the random directions; default 0.</param>
    /// <param name="Tolerance">
    /// The retraction stops when max|H| ≤ Tolerance·max(1, max|y|); default 1e−10, the default of
    /// <c>landscape walk --tolerance</c> and the residual the construction reaches on small data (README).
    /// </param>
    public sealed record WalkOptions(int Steps = 20, double StepSize = 0.05, int Seed = 0, double Tolerance = 1e-10);

    /// <summary>Options of <see cref="Connect"/>: paths between the model's point A and another minimum B (<see cref="PathConnection.Connect"/>).</summary>
    /// <param name="Methods">The methods, in order; default null: all five, as <c>landscape connect</c>.</param>
    /// <param name="Align">Permute B's hidden units to match A's first (weight matching); default false, as <c>--align none</c>.</param>
    /// <param name="Points">Evenly spaced points of the common measurement; default 61, as Garipov et al. (<see cref="PathEvaluation.DefaultPoints"/>).</param>
    /// <param name="MaxEvaluations">Gradient evaluations of the curves and NEB, Jacobian evaluations of the manifold path; default <see cref="Paths.ConnectOptions.DefaultMaxEvaluations"/>.</param>
    /// <param name="Seed">Seed of the curves' t draws and of weight matching's layer order; default 0.</param>
    /// <param name="Bends">Points of a curve, endpoints included; default 3 (one trainable bend, as Garipov et al.).</param>
    /// <param name="Tolerance">The on-M tolerance, max|H| ≤ Tolerance·max(1, max|y|); default 1e−10, that of <c>walk</c> and <c>connect</c>.</param>
    /// <param name="LearningRate">The curves' and NEB's step size; default null: (1 − β)/λ̂ (<see cref="CurveTraining"/>).</param>
    public sealed record ConnectOptions(IReadOnlyList<ConnectMethod>? Methods = null, bool Align = false, int Points = PathEvaluation.DefaultPoints,
        int MaxEvaluations = Paths.ConnectOptions.DefaultMaxEvaluations, int Seed = 0, int Bends = 3, double Tolerance = 1e-10, double? LearningRate = null);

    /// <summary>The residual map H of the model and data, for the library's other entry points (operators, estimators, projections).</summary>
    public ResidualMap Map { get; }

    /// <summary>The model; its current leaves are the point p.</summary>
    public IDifferentiableModel Model => Map.Model;

    /// <summary>The data: its rows, read batch by batch.</summary>
    public IDataSource Data => Map.Data;

    /// <summary>The number of parameters n.</summary>
    public int ParameterCount => Map.ParameterCount;

    /// <summary>The number of constraints ℓd: d points with ℓ targets each.</summary>
    public int Constraints => Map.Constraints;

    /// <summary>Binds any differentiable model to <paramref name="data"/>. The model stays the caller's.</summary>
    /// <param name="model">The model; its current leaves are the point p.</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs.</param>
    /// <param name="exponent">a ≥ 1 in L = Σ|H_k|^a; default 2, the squared loss of the paper's Section 2.1.</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(IDifferentiableModel model, IDataSource data, double exponent = 2.0, int? batchSize = null) =>
        For(model, data, LossFunction.Squared(exponent), batchSize);

    /// <summary>Binds a network at a point (a model file's content, see <see cref="ModelFile.Load"/>) to <paramref name="data"/>; the point is copied.</summary>
    /// <param name="point">The network and its parameters p.</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs.</param>
    /// <param name="exponent">a ≥ 1 in L = Σ|H_k|^a; default 2, the squared loss of the paper's Section 2.1.</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(NetworkPoint point, IDataSource data, double exponent = 2.0, int? batchSize = null) =>
        For(point, data, LossFunction.Squared(exponent), batchSize);

    /// <summary>
    /// Binds a TorchSharp module x ↦ f(x), d × p to d × ℓ with p and ℓ those of <paramref name="data"/> (the rows in the
    /// data's shape: d × c × h × w for images), through <see cref="ModuleModel"/>: p is the concatenation of its
    /// parameters. The module stays the caller's.
    /// </summary>
    /// <remarks>
    /// Geometry is decided in float64. A module built before the library's first call has float32 parameters (TorchSharp's
    /// default dtype); <see cref="ModuleModel"/> converts its parameters to float64 in place, exactly. Building the module after <see cref="LoadData"/> gives float64 parameters from the start.
    /// The module is evaluated in eval mode, as PyHessian does: <see cref="ModuleModel"/> calls <c>eval()</c> on it, so
    /// that dropout is off, batch norm uses its running statistics (never moved by an evaluation) and L does not depend
    /// on <paramref name="batchSize"/>; <see cref="ModuleModel.Mode"/> (through <see cref="Model"/>) says whether it was
    /// in training mode and which layers the mode affects.
    /// </remarks>
    /// <param name="module">The module; it takes a d × p tensor and returns d × ℓ (or d for ℓ = 1).</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs.</param>
    /// <param name="exponent">a ≥ 1 in L = Σ|H_k|^a; default 2, the squared loss of the paper's Section 2.1.</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(nn.Module<Tensor, Tensor> module, IDataSource data, double exponent = 2.0, int? batchSize = null) =>
        For(module, data, LossFunction.Squared(exponent), batchSize);

    /// <summary>
    /// Binds a TorchScript module loaded with <c>torch.jit.load&lt;Tensor, Tensor&gt;(path)</c> (a network saved by PyTorch) to
    /// <paramref name="data"/>, as <see cref="For(nn.Module{Tensor, Tensor}, IDataSource, double, int?)"/> binds an
    /// <c>nn.Module</c> (<see cref="ModuleModel"/>: its parameters in <c>named_parameters()</c> order are p, converted to
    /// float64 exactly; buffers fixed; eval mode). The module stays the caller's.
    /// </summary>
    /// <param name="module">The loaded module; it takes the rows in the data's shape (d × c × h × w for images) and returns d × ℓ.</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the module's outputs.</param>
    /// <param name="loss">The loss; default null: the paper's squared loss (<see cref="LossFunction.Squared"/>). <c>LossFunction.Parse("cross-entropy")</c> for PyTorch's <c>CrossEntropyLoss()</c>.</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(jit.ScriptModule<Tensor, Tensor> module, IDataSource data, LossFunction? loss = null, int? batchSize = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(data);
        return For(new ModuleModel(module, data.InputDim, data.OutputDim, data.InputShape), data, loss ?? LossFunction.Squared(), batchSize);
    }

    /// <summary>Binds a TorchSharp module to <paramref name="data"/> with the loss <paramref name="loss"/> (see <see cref="For(nn.Module{Tensor, Tensor}, IDataSource, double, int?)"/>).</summary>
    /// <param name="module">The module; it takes the rows in the data's shape and returns d × ℓ (or d for ℓ = 1).</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs.</param>
    /// <param name="loss">The loss: squared (the paper's), mse or cross-entropy (<see cref="LossFunction.Parse"/>).</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(nn.Module<Tensor, Tensor> module, IDataSource data, LossFunction loss, int? batchSize = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(data);
        return For(new ModuleModel(module, data.InputDim, data.OutputDim, data.InputShape), data, loss, batchSize);
    }

    /// <summary>Binds any differentiable model to <paramref name="data"/> with the loss <paramref name="loss"/>. The model stays the caller's.</summary>
    /// <param name="model">The model; its current leaves are the point p.</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs.</param>
    /// <param name="loss">The loss: squared (the paper's), mse or cross-entropy (<see cref="LossFunction.Parse"/>).</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(IDifferentiableModel model, IDataSource data, LossFunction loss, int? batchSize = null) =>
        new(new ResidualMap(model, data, loss, batchSize), ownedModel: null);

    /// <summary>Binds a network at a point to <paramref name="data"/> with the loss <paramref name="loss"/>; the point is copied.</summary>
    /// <param name="point">The network and its parameters p (<see cref="ModelFile.Load"/>: the project's formats or a TorchScript file).</param>
    /// <param name="data">d points with ℓ targets each, ℓ equal to the model's outputs.</param>
    /// <param name="loss">The loss: squared (the paper's), mse or cross-entropy (<see cref="LossFunction.Parse"/>).</param>
    /// <param name="batchSize">Rows per batch of every evaluation; default all rows (the results do not depend on it).</param>
    public static Landscape For(NetworkPoint point, IDataSource data, LossFunction loss, int? batchSize = null)
    {
        ArgumentNullException.ThrowIfNull(point);
        var model = point.ToModel();
        try
        {
            return new Landscape(new ResidualMap(model, data, loss, batchSize), model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Reads a model file (<see cref="ModelFile.Load"/>: <c>losslandscape.mlp/1</c>, <c>dag/1</c>, <c>seq/1</c> or a TorchScript module, opened for the data's row shape) and binds it to <paramref name="data"/>.</summary>
    /// <exception cref="ModelFormatException">The file is missing or malformed; the message names the file and the fault.</exception>
    public static Landscape Load(string modelPath, IDataSource data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return For(ModelFile.Load(modelPath, data.InputShape), data); // a TorchScript module takes rows of the data's shape
    }

    /// <summary>
    /// Loads a dataset as the command line's <c>--data</c> does (<see cref="DatasetLoader.Load"/>): a CSV path with a header row,
    /// <c>builtin:digits|iris|diabetes</c> or <c>synthetic:D,P[,L[,SEED]]</c>; and sets TorchSharp up for the library
    /// (float64, <see cref="TorchRuntime"/>), so that modules built afterwards have float64 parameters.
    /// </summary>
    /// <param name="source">Where the data is.</param>
    /// <param name="targets">Which columns are targets; default null: the last column (<see cref="TargetSpec.LastColumn"/>).</param>
    /// <exception cref="DataFormatException">The data cannot be used; the message says why and where.</exception>
    public static Dataset LoadData(string source, TargetSpec? targets = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        TorchRuntime.EnsureInitialized();
        return DatasetLoader.Load(source, targets ?? TargetSpec.LastColumn);
    }

    /// <summary>
    /// Opens a data source as the command line's <c>--data</c>, <c>--split</c>, <c>--rows</c> and <c>--input-shape</c> do, without
    /// reading it into memory where it is a file of arrays (<see cref="DatasetLoader.Open"/>: <c>.npz</c>, <c>idx:DIR</c>,
    /// <c>builtin:fashion-mnist</c> are read batch by batch; CSV and the embedded tables are loaded); sets TorchSharp up for the
    /// library as <see cref="LoadData"/> does. Dispose the result to close its files.
    /// </summary>
    /// <param name="source">Where the data is.</param>
    /// <param name="rows"><c>N</c> (the first N rows) or <c>A:B</c>; default null: all.</param>
    /// <param name="inputShape">The row shape, e.g. <c>1,8,8</c>; default null: the source's own (an IDX file's [1, 28, 28]).</param>
    /// <param name="split"><c>train</c> (default) or <c>test</c>, for an IDX source.</param>
    /// <param name="targets">Which columns are targets, for a CSV source; default the last column.</param>
    /// <exception cref="DataFormatException">The data cannot be used; the message says why and where.</exception>
    /// <exception cref="LandscapeInputException">A row range or shape that does not fit the source.</exception>
    public static IDataSource OpenData(string source, string? rows = null, string? inputShape = null, string split = "train", TargetSpec? targets = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        TorchRuntime.EnsureInitialized();
        var opened = DatasetLoader.Open(source, targets ?? TargetSpec.LastColumn, split: split);
        try
        {
            return DataView.Of(opened, rows, inputShape);
        }
        catch
        {
            (opened as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>L(p) = Σ_k |H_k(p)|^a (<see cref="ResidualMap.Loss"/>; <c>landscape evaluate</c>).</summary>
    public double Loss()
    {
        ThrowIfDisposed();
        return Map.Loss();
    }

    /// <summary>∇L(p) ∈ ℝⁿ by reverse mode (<see cref="ResidualMap.Gradient"/>; <c>landscape evaluate</c> prints its norm).</summary>
    public double[] Gradient()
    {
        ThrowIfDisposed();
        using var scope = NewDisposeScope();
        return Map.Gradient().data<double>().ToArray();
    }

    /// <summary>
    /// Whether p is on M, the rank of J with its tolerance and gap, dim M = n − rank J and the inertia of ∇²L
    /// (Theorems 2.1 and 4.1, Proposition 2.3; <see cref="Certificate.Compute"/>, <c>landscape certify</c>).
    /// </summary>
    /// <param name="options">Default null: <see cref="CertificateOptions"/>'s defaults (the method chosen by size, on M when max|H| ≤ 1e−8·max(1, max|y|)).</param>
    /// <param name="limits">The memory budget, the token and the progress sink (<see cref="Certificate.Compute"/>).</param>
    public CertificateResult Certify(CertificateOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return Certificate.Compute(Map, options, limits);
    }

    /// <summary>
    /// Eigenvalues of ∇²L (or of 2JᵀJ) by <see cref="HessianSpectrum.Compute"/>, the call <c>landscape spectrum</c> makes:
    /// all n (dense), 2·eig(JJᵀ) on M (gram), k extreme ones by Lanczos with explicit residuals, or the density by stochastic
    /// Lanczos quadrature (slq). A value is an eigenvalue only where <see cref="SpectrumResult.Converged"/> says so.
    /// </summary>
    /// <param name="options">Default null: <see cref="Geometry.SpectrumOptions"/>'s defaults (the 10 largest by Lanczos, tolerance 1e−6).</param>
    /// <param name="limits">The memory budget, the token, and the stages of dense work reported as they happen.</param>
    public SpectrumResult Spectrum(Geometry.SpectrumOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return HessianSpectrum.Compute(Map, options, limits);
    }

    /// <summary>tr ∇²L (or tr 2JᵀJ) with its standard error (<c>landscape trace</c>).</summary>
    /// <param name="options">Default null: Hutch++ on ∇²L with its defaults.</param>
    /// <param name="limits">The memory budget of the probe blocks, the token and the progress sink (<see cref="TraceEstimate.Compute"/>).</param>
    public TraceResult Trace(TraceOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        options ??= new TraceOptions();
        return TraceEstimate.Compute(Operator(options.Matrix), options.Method, options.Estimator, limits);
    }

    /// <summary>
    /// Trains the model from its current point (<see cref="Trainer.Run"/>; <c>landscape train</c>) and leaves it at the
    /// point of least L seen.
    /// </summary>
    /// <param name="options">Default null: 100 Gauss–Newton steps towards the float64 zero of L.</param>
    /// <param name="limits">
    /// The memory budget of the steps; a <see cref="TrainingProgress"/> (step, N, L, best L) reported after each step; the
    /// token, which ends the run with <see cref="SolverStatus.Cancelled"/> at the next step, keeping the best point.
    /// </param>
    public TrainingResult Train(TrainOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        options ??= new TrainOptions();
        using var created = options.Optimizer is null ? new GaussNewton() : null;
        return Trainer.Run(Map, options.Optimizer ?? created!, new TrainingOptions(options.MaxIterations, options.TargetLoss), limits);
    }

    /// <summary>
    /// A random walk on M from the model's point: tangent steps in ker J, retracted onto M by Gauss–Newton; the model
    /// is left at the end point (<see cref="ManifoldWalk.Run"/>; <c>landscape walk</c>). The point should be on M (<see cref="Certify"/>).
    /// </summary>
    /// <param name="options">Default null: 20 steps of 0.05.</param>
    /// <param name="limits">The memory budget of the factorization of J; the token, which ends the walk at the next step.</param>
    public WalkResult Walk(WalkOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        options ??= new WalkOptions();
        return ManifoldWalk.Run(Map, new Paths.WalkOptions(options.Steps, options.StepSize, options.Seed, OnManifoldTest.Threshold(Map, options.Tolerance)), limits);
    }

    /// <summary>
    /// Joins the model's point A to another minimum <paramref name="to"/> of the same network by every method asked for,
    /// measured the same way (<see cref="PathConnection.Connect"/>; <c>landscape connect</c>). The model is restored to
    /// its point afterwards.
    /// </summary>
    /// <param name="to">B.</param>
    /// <param name="options">Default null: every method, as <c>landscape connect</c>.</param>
    /// <param name="limits">The memory budget, the progress sink and the token, which stops the running method (it returns what it has) and skips the rest.</param>
    /// <exception cref="LandscapeInputException">The model is not one of the project's networks, the networks differ, or an endpoint is off M for a manifold path.</exception>
    public ConnectionReport Connect(NetworkPoint to, ConnectOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(to);
        options ??= new ConnectOptions();
        if (Model is not NetworkModel network)
        {
            throw new LandscapeInputException("connect joins two points of one of the project's networks (a model file's NetworkPoint); for another model call PathConnection.Run with the two parameter vectors");
        }
        var a = new NetworkPoint(network.Network, network.ToArray());
        var methods = options.Methods ?? Enum.GetValues<ConnectMethod>();
        var settings = new Paths.ConnectOptions(options.Points, options.MaxEvaluations, options.Seed, options.Bends, OnManifoldTest.Threshold(Map, options.Tolerance), options.LearningRate);
        return PathConnection.Connect(Map, a, to, methods, settings, options.Align, limits);
    }

    /// <summary>
    /// L on a 1D or 2D grid around the point (<see cref="LossSlice.Compute"/>; <c>landscape slice</c>, which also plots
    /// it: <see cref="Reports.Plots.Slice"/>). The model is restored to its point afterwards.
    /// </summary>
    /// <param name="options">Default null: two random directions, 51 × 51 points over [−1, 1]², the defaults of <c>landscape slice</c>.</param>
    /// <param name="limits">The memory budget of the grid and of the directions, and the token.</param>
    public SliceResult Slice(SliceOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return LossSlice.Compute(Map, options ?? new SliceOptions([SliceDirection.Random, SliceDirection.Random]), limits);
    }

    /// <summary>
    /// How far KFAC, EKFAC, the diagonal and the per-layer block diagonal are from the exact Gauss–Newton matrix or Hessian at
    /// this point (<see cref="ApproximationComparison.Compute"/>; <c>landscape approx</c>).
    /// </summary>
    /// <param name="options">Default null: all four kinds against the Gauss–Newton matrix, top 5 eigenvalues, the defaults of <c>landscape approx</c>.</param>
    /// <param name="limits">The memory budget (dense matrices or probes, the factors), the token and the progress sink.</param>
    public ApproximationReport Approximations(ApproximationOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return ApproximationComparison.Compute(Map, options, limits);
    }

    /// <summary>
    /// Each layer's block of the curvature: its top eigenvalues and its trace (<see cref="PerLayerCurvature.Compute"/>;
    /// <c>landscape spectrum --per-layer</c> and <c>landscape trace --per-layer</c>).
    /// </summary>
    /// <param name="options">Default null: the Hessian's 5 largest eigenvalues per layer and Hutchinson's trace.</param>
    /// <param name="limits">The memory budget, the token and the progress sink.</param>
    public PerLayerResult PerLayer(PerLayerOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return PerLayerCurvature.Compute(Map, options, limits);
    }

    /// <summary>
    /// KFAC of the Gauss–Newton matrix at this point (<see cref="KfacOperator.Create"/>): an operator every estimator takes, with
    /// (A + λI)⁻¹v and log det(A + λI) for Laplace and influence functions. The caller disposes it.
    /// </summary>
    /// <param name="options">Default null: the exact output-space factor.</param>
    /// <param name="limits">The memory budget of the factors, the token and the progress sink.</param>
    public KfacOperator Kfac(KfacOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return KfacOperator.Create(Map, options, limits);
    }

    /// <summary>EKFAC of the Gauss–Newton matrix at this point (<see cref="EkfacOperator.Create"/>); the caller disposes it.</summary>
    /// <param name="options">Default null: the exact output-space factor.</param>
    /// <param name="limits">The memory budget of the factors, the token and the progress sink.</param>
    public EkfacOperator Ekfac(KfacOptions? options = null, RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return EkfacOperator.Create(Map, options, limits);
    }

    /// <summary>The exact diagonal of the Gauss–Newton matrix at this point (<see cref="GaussNewtonDiagonal.Compute"/>); the caller disposes it.</summary>
    /// <param name="limits">The memory budget of a batch's rows and the token.</param>
    public DiagonalOperator GaussNewtonDiagonal(RunLimits? limits = null)
    {
        ThrowIfDisposed();
        return LossLandscape.Approximations.GaussNewtonDiagonal.Compute(Map, limits);
    }

    /// <summary>The exact per-layer block diagonal of ∇²L or of the Gauss–Newton matrix (<see cref="BlockDiagonalOperator.Create"/>); the caller disposes it.</summary>
    /// <param name="matrix">∇²L (default) or the Gauss–Newton matrix.</param>
    public BlockDiagonalOperator BlockDiagonal(CurvatureKind matrix = CurvatureKind.Hessian)
    {
        ThrowIfDisposed();
        return BlockDiagonalOperator.Create(Map, matrix);
    }

    /// <summary>Releases the model this object made (from a <see cref="NetworkPoint"/>) and the map's tensors; a module or model passed in stays the caller's.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _ownedModel?.Dispose();
        Map.Dispose();
    }

    private LinearOperator Operator(CurvatureKind kind) => CurvatureOperators.Create(Map, kind);

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
