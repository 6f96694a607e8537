using System.Text.Json.Serialization;
using LossLandscape.Operators;
using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Training;
using static TorchSharp.torch;

namespace LossLandscape.Reports;

/// <summary>Settings of <see cref="TrainedSpectra.Run"/>.</summary>
public sealed record TrainedSpectraOptions
{
    /// <summary>The first d rows of the embedded digits data (one-hot, ℓ = 10); default 200, so ℓd = 2000.</summary>
    public int Rows { get; init; } = 200;

    /// <summary>
    /// The hidden activation; default tanh: smooth and not rectified, so no unit dies. With rectified activations (smooLU)
    /// units whose pre-activations are negative on every row contribute zero columns to J, and rank J drops below n in
    /// the underparameterized regime (measured: rank 369 of n = 760 after Gauss–Newton at d = 80), which hides the transition.
    /// </summary>
    public string Activation { get; init; } = "tanh";

    /// <summary>Widths h of the one hidden layer; n = (p′ + 1)h + (h + 1)ℓ, p′ the non-constant pixels of the subset (<see cref="TrainedSpectra.DropConstantInputs"/>). Default: n/ℓd from 0.38 to 10, every h ≥ ℓ (with h &lt; ℓ − 1 the outputs f(xᵢ) − c = Va(xᵢ) have rank ≤ h &lt; rank of the centred one-hot targets, so no width that narrow can interpolate, whatever n is).</summary>
    public IReadOnlyList<int> Widths { get; init; } = [10, 16, 24, 32, 64, 128, 267];

    /// <summary>The optimizers, by their command-line names; default Gauss–Newton, Adam, SGD.</summary>
    public IReadOnlyList<string> Optimizers { get; init; } = ["gauss-newton", "adam", "sgd"];

    /// <summary>Gauss–Newton step budget; default 60 (quadratic convergence needs fewer than 15 well above the threshold, more near it).</summary>
    public int GaussNewtonSteps { get; init; } = 60;

    /// <summary>Adam steps (full batch, Kingma &amp; Ba defaults); default 2000.</summary>
    public int AdamSteps { get; init; } = 2000;

    /// <summary>SGD steps (B = 32, momentum 0.9, η = (1 − μ)/λmax(p₀)); default 2000.</summary>
    public int SgdSteps { get; init; } = 2000;

    /// <summary>Seed of the He initialization (the same p₀ for every optimizer at one width) and of the shuffling; default 1.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Top eigenvalues computed (and searched for outliers); default 2ℓ + 5 = 25, past the 2ℓ searched.</summary>
    public int TopK { get; init; } = 25;

    /// <summary>Bottom eigenvalues computed by thick-restart Lanczos when n is too large for the dense spectrum; default 20 (issue 11's goal).</summary>
    public int BottomK { get; init; } = 20;

    /// <summary>
    /// Largest n whose full spectrum is computed densely (n Hessian-vector products and one n × n eigh); default the library's one
    /// dense-size rule, <see cref="Geometry.Certificate.DenseLimit"/> at the default memory budget (about 3 970).
    /// </summary>
    public int DenseLimit { get; init; } = Geometry.Certificate.DenseLimit();

    /// <summary>
    /// Hessian-vector products (verification included) of the thick-restart Lanczos run for the top eigenvalues when
    /// n &gt; <see cref="DenseLimit"/>; default 2000 (<see cref="ThickRestartLanczos.DefaultMaxIterations"/>).
    /// </summary>
    public int TopProducts { get; init; } = ThickRestartLanczos.DefaultMaxIterations;

    /// <summary>
    /// Hessian-vector products (verification included) of the thick-restart Lanczos run for the bottom eigenvalues when
    /// n &gt; <see cref="DenseLimit"/>; default 2000, issue 11's budget for the 20 smallest.
    /// </summary>
    public int BottomProducts { get; init; } = ThickRestartLanczos.DefaultMaxIterations;

    /// <summary>
    /// libtorch's intra-op threads while the sweep runs, restored afterwards (process-wide: libtorch has one intra-op pool); null keeps libtorch's default (one per core).
    /// </summary>
    public int? Threads { get; init; }

    /// <summary>The full study (about 5 minutes on 2 cores; docs/trained-spectra.md).</summary>
    public static TrainedSpectraOptions Standard { get; } = new();

    /// <summary>
    /// The few-second version (<c>--quick</c>, and the test of the experiment): 20 rows (ℓd = 200) and one width on each
    /// side of the transition: h = 2 (n = 134 &lt; ℓd: Gauss–Newton stalls above 0; the full spectrum densely) and h = 19
    /// (n = 1188 &gt; ℓd: Gauss–Newton reaches M in a few steps; h + 1 = d, so the one-hot targets are a regular value
    /// and rank J on M is ℓd; n above <see cref="DenseLimit"/>, so the Lanczos route, with the inertia from σ(J) on M);
    /// 200 first-order steps; one libtorch thread, because at n ≤ 1188 splitting each small product across threads costs more
    /// than it saves, and on a busy machine OpenMP's waiting workers make it far worse (measured on 2 cores under a load of
    /// 9: 1.9 s with one thread, 52 s with two). It runs every route of <see cref="TrainedSpectra.Spectrum"/> and both sides of n = ℓd at
    /// sizes where each point takes about a second. <see cref="Describe"/> is the text that
    /// <c>landscape experiment trained-spectra --help</c> prints and docs/trained-spectra.md quotes.
    /// </summary>
    public static TrainedSpectraOptions Quick { get; } = new()
    {
        Rows = 20, Widths = [2, 19], AdamSteps = 200, SgdSteps = 200, GaussNewtonSteps = 30, TopK = 20, BottomK = 5, DenseLimit = 300, TopProducts = 100, BottomProducts = 60,
        Threads = 1,
    };

    /// <summary>
    /// The settings in one line, computed from the values (so the help text and the docs cannot drift from them), e.g.
    /// "20 rows, widths 2 and 19, gauss-newton ≤ 30 steps, adam 200, sgd 200, dense spectrum for n ≤ 300, else Lanczos, 1 libtorch thread".
    /// </summary>
    public string Describe()
    {
        string widths = Widths.Count switch
        {
            0 => "no widths",
            1 => $"width {Widths[0]}",
            _ => "widths " + string.Join(", ", Widths.Take(Widths.Count - 1)) + " and " + Widths[^1],
        };
        var steps = Optimizers.Select(o => o switch
        {
            "gauss-newton" => $"gauss-newton ≤ {GaussNewtonSteps} steps",
            _ => $"{o} {TrainedSpectra.StepBudget(o, this)}",
        });
        string threads = Threads is { } t ? FormattableString.Invariant($", {t} libtorch thread{(t == 1 ? "" : "s")}") : "";
        return FormattableString.Invariant($"{Rows} rows, {widths}, {string.Join(", ", steps)}, dense spectrum for n ≤ {DenseLimit}, else Lanczos{threads}");
    }
}

/// <summary>The Hessian ∇²L at a trained point: its extreme eigenvalues, inertia, outliers and negative eigenvalues.</summary>
/// <param name="Method">
/// "dense" (all n eigenvalues of the dense ∇²L), "lanczos" (top and bottom k by <see cref="Lanczos"/> on <see cref="HessianOperator"/>),
/// or "lanczos + σ(J) on M" (the same, with the inertia counted from σ(J) at a point of M, where ∇²L = 2JᵀJ + R and ‖R‖₂ is measured).
/// </param>
/// <param name="Top">The largest eigenvalues, descending.</param>
/// <param name="Bottom">The smallest eigenvalues, ascending.</param>
/// <param name="Tolerance">
/// The numerical zero τ: dense, n·ε·max|λ| (the backward error of the symmetric eigensolver); Lanczos, 1e−6·max|λ| (the Lanczos
/// tolerance), and a Ritz value θ with residual bound ρ counts as negative only when θ &lt; −max(τ, ρ).
/// </param>
/// <param name="Positive">#λ &gt; τ (dense), rank J (on M); null when not counted (Lanczos off M).</param>
/// <param name="Zero">#|λ| ≤ τ (dense), n − rank J (on M); null when not counted.</param>
/// <param name="Negative">
/// #λ &lt; −τ; for Lanczos counted among the converged bottom k whose value is below −max(τ, its residual), so it is a count of
/// eigenvalues proven negative (a count of k means "at least k"); the pairs that did not converge are listed in <see cref="BottomConverged"/>.
/// </param>
/// <param name="NegativeAtLeast">True when <paramref name="Negative"/> is a lower bound (every one of the bottom k was negative; in JSON, <c>negativeIsLowerBound</c>).</param>
/// <param name="ResidualTermNorm">‖∇²L − 2JᵀJ‖₂ (Lanczos, largest magnitude, on <see cref="ResidualTermOperator"/>): by Weyl every eigenvalue is within it of one of 2JᵀJ, which has n − rank J zeros and no negatives.</param>
/// <param name="ZeroWithinResidualTerm">#|λ| ≤ max(τ, ‖∇²L − 2JᵀJ‖₂) (dense only): the eigenvalues that may come from the zeros of 2JᵀJ.</param>
/// <param name="NegativeBeyondResidualTerm">#λ &lt; −max(τ, ‖∇²L − 2JᵀJ‖₂) (dense; Lanczos among the bottom k): always 0 by Weyl, a check.</param>
/// <param name="Outliers">The outliers above the bulk, by the gap rule of <see cref="TrainedSpectra.CountOutliers"/>.</param>
/// <param name="OutlierGap">λ_k/λ_{k+1} at the gap chosen (∞ when λ_{k+1} ≤ τ).</param>
/// <param name="NegativeRatio">|λmin|/λmax when λmin &lt; −τ, else 0: the size of the negative eigenvalues relative to the top one.</param>
/// <param name="Applications">Hessian-vector products used (in JSON, <c>hessianVectorProducts</c>).</param>
/// <param name="Status">Converged unless a Lanczos run stopped without convergence.</param>
/// <remarks>In JSON, what was not counted or computed is written as null.</remarks>
public sealed record HessianSummary(
    string Method, double[] Top, double[] Bottom, double Tolerance, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? Positive, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? Zero, int Negative,
    [property: JsonPropertyName("negativeIsLowerBound")] bool NegativeAtLeast, double ResidualTermNorm, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] int? ZeroWithinResidualTerm,
    int NegativeBeyondResidualTerm, int Outliers, double OutlierGap, double NegativeRatio, [property: JsonPropertyName("hessianVectorProducts")] long Applications,
    SolverStatus Status)
{
    /// <summary>Lanczos: per bottom value, whether its explicit residual ‖Hv − λv‖ met the tolerance; null for the dense route (all exact).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IReadOnlyList<bool>? BottomConverged { get; init; }

    /// <summary>Lanczos: ‖Hv − λv‖ of each bottom value, computed explicitly; null for the dense route.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IReadOnlyList<double>? BottomResiduals { get; init; }

    /// <summary>Lanczos: per top value, whether its explicit residual met the tolerance; null for the dense route.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IReadOnlyList<bool>? TopConverged { get; init; }
}

/// <summary>One trained point of the sweep.</summary>
/// <param name="Width">Hidden width h.</param>
/// <param name="N">Parameters n.</param>
/// <param name="Constraints">ℓd.</param>
/// <param name="Training">The training run (its best point is analysed).</param>
/// <param name="MaxAbsResidual">max|H_k| at the point.</param>
/// <param name="Rank">The rank of J with its tolerance and gap (<see cref="JacobianFactorization.RankAt"/>).</param>
/// <param name="Hessian">The spectrum of ∇²L there.</param>
/// <param name="Seconds">Training and analysis time.</param>
public sealed record TrainedSpectrumPoint(int Width, int N, int Constraints, TrainingResult Training, double MaxAbsResidual, RankDecision Rank, HessianSummary Hessian, double Seconds)
{
    /// <summary>Whether the point is on M to float64 accuracy (L ≤ the rounding floor ×10⁴, i.e. max|H| within 100× of rounding).</summary>
    public bool OnManifold { get; init; }

    /// <summary>
    /// The rank J must have on M for one-hot targets: min(n, (ℓ − 1)d + min(h + 1, d)). On M, f(xᵢ) = V a(xᵢ) + c = yᵢ and
    /// 1ᵀyᵢ = 1 for every i force 1ᵀV = 0 and 1ᵀc = 1 when the d vectors (a(xᵢ), 1) span ℝ^{h+1}; then the d rows
    /// Σⱼ ∂fⱼ(xᵢ)/∂p = ((a(xᵢ), 1) in the output-layer block, 0 elsewhere) span only h + 1 dimensions. One-hot targets are
    /// therefore not a regular value (Theorem 2.1's hypothesis fails) unless h + 1 ≥ d.
    /// </summary>
    public int OneHotRankOnM => Math.Min(N, (Constraints / Outputs * (Outputs - 1)) + Math.Min(Width + 1, Constraints / Outputs));

    /// <summary>ℓ.</summary>
    public int Outputs { get; init; } = 1;

    /// <summary>dim M = n − rank J where the point is on M (<see cref="OnManifold"/>); null off M, where n − rank J is not the dimension of M.</summary>
    public int? ManifoldDimension => OnManifold ? N - Rank.Rank : null;
}

/// <summary>The whole sweep.</summary>
/// <param name="Data">The dataset used.</param>
/// <param name="Rows">d (in JSON, <c>d</c>).</param>
/// <param name="Outputs">ℓ.</param>
/// <param name="Points">Every (width, optimizer) pair, width-major (written by the CLI, with the number of classes).</param>
/// <param name="Seconds">Total wall time.</param>
/// <param name="Activation">The hidden activation's name.</param>
public sealed record TrainedSpectraResult(string Data, [property: JsonPropertyName("d")] int Rows, int Outputs, [property: JsonIgnore] IReadOnlyList<TrainedSpectrumPoint> Points,
    double Seconds, string Activation)
{
    /// <summary>ℓd.</summary>
    public int Constraints => Rows * Outputs;
}

/// <summary>
/// The experiment of the paper's Discussion: train one-hidden-layer smooLU networks on digits (one-hot, ℓ = 10) with the
/// standard optimizers across widths whose n runs from below ℓd to far above it, and measure at the trained point the
/// loss, rank J, the inertia of ∇²L, its top eigenvalues, the outliers above the bulk against the number of classes, and
/// the size of its negative eigenvalues relative to the top one.
/// </summary>
/// <remarks>
/// What the literature reports at trained solutions: many eigenvalues ≈ 0, some positive, a few small negative ones
/// (Chaudhari et al. 2016, Entropy-SGD, §2; Wu, Zhu &amp; E 2017); a bulk near 0 and outliers whose number tracks the number
/// of classes (Sagun, Bottou &amp; LeCun 2016; Sagun, Evci, Güney, Dauphin &amp; Bottou 2017; Papyan 2019, "Measurements of
/// three-level hierarchical structure in the outliers in the spectrum of deepnet Hessians"). What the paper proves
/// (Cooper, Theorem 2.1, Proposition 2.3): for n &gt; ℓd, M = H⁻¹(0) is an (n − ℓd)-manifold, and ∇²L on it has ℓd positive
/// and n − ℓd zero eigenvalues; for n &lt; ℓd, H generically misses 0.
/// </remarks>
public static class TrainedSpectra
{
    /// <summary>Runs the sweep, reporting (what, fraction) as it goes.</summary>
    /// <param name="options">The widths, optimizers and budgets of the sweep.</param>
    /// <param name="limits">
    /// The token, checked before each (width, optimizer) run and by each training run (which keeps its best point and is
    /// measured there); cancelling then throws <see cref="OperationCanceledException"/>; the run in progress reported.
    /// </param>
    public static TrainedSpectraResult Run(TrainedSpectraOptions? options = null, RunLimits? limits = null)
    {
        options ??= TrainedSpectraOptions.Standard;
        limits ??= RunLimits.Default;
        TorchRuntime.EnsureInitialized();
        int threads = get_num_threads();
        if (options.Threads is { } wanted)
        {
            set_num_threads(wanted);
        }
        try
        {
            return Sweep(options, limits);
        }
        finally
        {
            set_num_threads(threads);
        }
    }

    private static TrainedSpectraResult Sweep(TrainedSpectraOptions options, RunLimits limits)
    {
        var watch = Stopwatch.StartNew();
        var data = DropConstantInputs(DatasetLoader.Load("builtin:digits", TargetSpec.Classes("digit")).Take(options.Rows));
        var activation = ActivationRegistry.Get(options.Activation);
        var scaling = InputScaling.Standardize(data);
        var points = new List<TrainedSpectrumPoint>();
        int total = options.Widths.Count * options.Optimizers.Count, done = 0;
        foreach (int width in options.Widths)
        {
            var mlp = new Mlp(data.InputDim, [new HiddenLayer(width, activation)], data.OutputDim).WithScaling(scaling);
            var start = mlp.InitialParameters(options.Seed);
            foreach (var name in options.Optimizers)
            {
                limits.Checkpoint($"h = {width} (n = {mlp.ParameterCount}), {name}", (double)done / total);
                points.Add(Measure(data, mlp, start, name, options, limits.WithoutProgress()));
                done++;
            }
        }
        limits.Report("done", 1.0);
        return new TrainedSpectraResult(data.Source, data.Count, data.OutputDim, points, watch.Elapsed.TotalSeconds, activation.Name);
    }

    /// <summary>
    /// The dataset without the input columns that are constant on its rows (on digits, border pixels that are 0 in every
    /// image of the subset). Such a column gives the h first-layer weights that read it an identically zero derivative,
    /// so they would add h to n and nothing to rank J: n would overstate the parameters the data can see.
    /// </summary>
    public static Dataset DropConstantInputs(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var keep = Enumerable.Range(0, data.InputDim).Where(j => Enumerable.Range(0, data.Count).Any(i => data.Input(i, j) != data.Input(0, j))).ToArray();
        if (keep.Length == data.InputDim || keep.Length == 0)
        {
            return data;
        }
        var x = new double[data.Count, keep.Length];
        var y = new double[data.Count, data.OutputDim];
        for (int i = 0; i < data.Count; i++)
        {
            for (int k = 0; k < keep.Length; k++)
            {
                x[i, k] = data.Input(i, keep[k]);
            }
            for (int j = 0; j < data.OutputDim; j++)
            {
                y[i, j] = data.Target(i, j);
            }
        }
        return new Dataset(x, y, keep.Select(j => data.InputNames[j]).ToArray(), data.TargetNames, data.Source);
    }

    /// <summary>The optimizer of the sweep for a command-line name, with the sweep's budget.</summary>
    public static (Optimizer Optimizer, int Steps) CreateOptimizer(string name, TrainedSpectraOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        int steps = StepBudget(name, options);
        // The library's defaults for each method (OptimizerChoice), the seed of the sweep for the mini-batches.
        return (new OptimizerChoice(name, Seed: options.Seed).Create(), steps);
    }

    /// <summary>The sweep's step budget for an optimizer's command-line name (L-BFGS: a tenth of Adam's, each of its steps being a line search).</summary>
    internal static int StepBudget(string name, TrainedSpectraOptions options) => name switch
    {
        "gauss-newton" => options.GaussNewtonSteps,
        "adam" => options.AdamSteps,
        "sgd" or "gd" => options.SgdSteps,
        "lbfgs" => options.AdamSteps / 10,
        _ => throw new ArgumentException($"unknown optimizer '{name}'"),
    };

    private static TrainedSpectrumPoint Measure(Dataset data, Mlp mlp, double[] start, string name, TrainedSpectraOptions options, RunLimits limits)
    {
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(mlp, start);
        using var map = new ResidualMap(model, data);
        var (optimizer, steps) = CreateOptimizer(name, options);
        TrainingResult run;
        using (optimizer)
        {
            run = Trainer.Run(map, optimizer, new TrainingOptions(steps), limits);
        }
        double maxAbs = map.MaxAbsResidual();
        var rank = JacobianFactorization.RankAt(map);
        bool onM = run.BestLoss <= 1e4 * Trainer.RoundingFloor(map);
        var hessian = Spectrum(map, options, rank, onM);
        return new TrainedSpectrumPoint(mlp.Hidden[0].Width, mlp.ParameterCount, map.Constraints, run, maxAbs, rank, hessian, watch.Elapsed.TotalSeconds) { OnManifold = onM, Outputs = data.OutputDim };
    }

    /// <summary>
    /// The spectrum summary of ∇²L at the map's current point: all n eigenvalues densely when n ≤
    /// <see cref="TrainedSpectraOptions.DenseLimit"/>; else the top and bottom k by Lanczos, and, at a point of M, the inertia
    /// from σ(J) (there ∇²L = 2JᵀJ + R with ‖R‖₂ measured: rank J positive eigenvalues 2σᵢ², n − rank J zeros).
    /// </summary>
    public static HessianSummary Spectrum(IResidualProblem map, TrainedSpectraOptions options, RankDecision? rank = null, bool onManifold = false)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        int n = map.ParameterCount;
        var hessian = new HessianOperator(map);
        // ‖R‖₂ of R = ∇²L − 2JᵀJ by Lanczos at the largest magnitude (relative tolerance 1e−3 is enough for a bound used as a threshold).
        var residualOp = new ResidualTermOperator(map);
        var r = Lanczos.Eigenpairs(residualOp, new LanczosOptions(K: 1, Which: SpectrumEnd.LargestMagnitude, MaxIterations: Math.Min(n, 80), Tolerance: 1e-3, Seed: 7));
        double residualTerm = r.Eigenvalues.Count > 0 ? Math.Abs(r.Eigenvalues[0]) : 0;
        if (n <= options.DenseLimit)
        {
            var dense = DenseSpectrum.Compute(hessian);
            var ascending = dense.Eigenvalues.ToArray();
            var descending = ascending.Reverse().ToArray();
            double max = ascending.Select(Math.Abs).DefaultIfEmpty(0).Max();
            // The dense route's resolution n·ε·‖∇²L‖ and its counts (InertiaRule); with ‖R‖₂ the zeros that may come from 2JᵀJ.
            double tau = InertiaRule.Resolution(n, max);
            double tauR = Math.Max(tau, residualTerm);
            var (positive, _, negative) = InertiaRule.Count(ascending, tau);
            var (_, zeroWithinR, negativeBeyondR) = InertiaRule.Count(ascending, tauR);
            var top = descending.Take(options.TopK).ToArray();
            var (outliers, gap) = CountOutliers(top, map.Data.OutputDim, tau);
            return new HessianSummary("dense", top, ascending.Take(options.BottomK).ToArray(), tau, positive, n - positive - negative, negative, false,
                residualTerm, zeroWithinR, negativeBeyondR, outliers, gap,
                NegativeRatio(ascending[0], descending[0], tau), hessian.Applications + residualOp.Applications, SolverStatus.Converged);
        }
        // Thick-restart Lanczos at both ends (issue 11): the plain recurrence with 100–200 steps converged neither end at n > 2500.
        var topRun = ThickRestartLanczos.Eigenpairs(hessian, new ThickRestartOptions(K: Math.Min(options.TopK, n), Which: SpectrumEnd.Largest, MaxIterations: options.TopProducts, Seed: 1));
        var bottomRun = ThickRestartLanczos.Eigenpairs(hessian, new ThickRestartOptions(K: Math.Min(options.BottomK, n), Which: SpectrumEnd.Smallest, MaxIterations: options.BottomProducts, Seed: 2));
        topRun.Eigenvectors.Dispose();
        bottomRun.Eigenvectors.Dispose();
        var topValues = topRun.Eigenvalues.ToArray();
        var bottomValues = bottomRun.Eigenvalues.ToArray();
        double scale = Math.Max(topRun.NormEstimate, bottomRun.NormEstimate);
        // Lanczos' relative tolerance; a Ritz value θ with explicit residual ρ has an eigenvalue in [θ − ρ, θ + ρ], so a converged
        // θ counts as negative only when θ < −max(τ, ρ); a value that did not converge is not counted (it is listed as such).
        double tolerance = 1e-6 * scale;
        bool[] negativeFlags = bottomValues.Select((v, i) => bottomRun.Converged[i] && v < -Math.Max(tolerance, bottomRun.ResidualNorms[i])).ToArray();
        int neg = negativeFlags.Count(f => f);
        double tR = Math.Max(tolerance, residualTerm);
        var (k, g) = CountOutliers(topValues, map.Data.OutputDim, tolerance);
        // The worse of the two runs: a breakdown or an unmet stopping rule in either is not a converged spectrum.
        var status = topRun.Status != SolverStatus.Converged ? topRun.Status : bottomRun.Status;
        double minNegative = neg > 0 ? bottomValues.Where((_, i) => negativeFlags[i]).Min() : 0;
        int? positive2 = null, zero2 = null;
        string method = "lanczos";
        if (onManifold && rank is not null && residualTerm < 1e-6 * scale
            && InertiaRule.FromJacobian(rank, n, map.Exponent == 2.0, onManifold) is { Decided: true } fromJ)
        {
            // On M: Weyl puts every eigenvalue within ‖R‖₂ of one of 2JᵀJ, whose spectrum is 2σᵢ² (rank J of them) and n − rank zeros.
            positive2 = fromJ.Positive;
            zero2 = fromJ.Zero;
            method = "lanczos + σ(J) on M";
        }
        return new HessianSummary(method, topValues, bottomValues, tolerance, positive2, zero2, neg, neg == bottomValues.Length, residualTerm, zero2,
            bottomValues.Count(v => v < -tR), k, g, NegativeRatio(minNegative, topValues.DefaultIfEmpty(0).Max(), 0),
            hessian.Applications + residualOp.Applications, status)
        {
            BottomConverged = bottomRun.Converged,
            BottomResiduals = bottomRun.ResidualNorms,
            TopConverged = topRun.Converged,
        };
    }

    /// <summary>
    /// The outliers above the bulk, by the largest spectral gap: with λ₁ ≥ λ₂ ≥ … the top eigenvalues, k is the i ≤ 2ℓ
    /// that maximizes λᵢ/λᵢ₊₁ (λᵢ₊₁ ≤ τ counts as an infinite gap: everything above zero is an outlier).
    /// </summary>
    /// <remarks>
    /// Sagun et al. 2017 and Papyan 2019 describe the spectrum at trained points as a bulk concentrated at 0 and a small
    /// number of outliers separated from it by a gap, about one per class (C outliers, C = ℓ here); the eigengap rule makes
    /// "separated by a gap" a number. The search is limited to 2ℓ so that the ℓd-dimensional positive part of the spectrum
    /// on M (which has its own gaps) is not counted wholesale.
    /// </remarks>
    public static (int Outliers, double Gap) CountOutliers(IReadOnlyList<double> top, int classes, double tolerance)
    {
        ArgumentNullException.ThrowIfNull(top);
        int best = 0;
        double bestGap = 0;
        for (int i = 1; i <= Math.Min(2 * classes, top.Count - 1); i++)
        {
            if (!(top[i - 1] > tolerance))
            {
                break;
            }
            double gap = top[i] > tolerance ? top[i - 1] / top[i] : double.PositiveInfinity;
            if (gap > bestGap)
            {
                bestGap = gap;
                best = i;
            }
            if (double.IsPositiveInfinity(gap))
            {
                break;
            }
        }
        return (best, bestGap);
    }

    private static double NegativeRatio(double min, double max, double tolerance) => min < -tolerance && max > 0 ? -min / max : 0;
}
