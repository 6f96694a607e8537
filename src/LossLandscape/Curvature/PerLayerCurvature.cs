using System.Diagnostics;
using LossLandscape.Approximations;
using LossLandscape.Engine;
using LossLandscape.Operators;
using LossLandscape.Problem;

namespace LossLandscape.Curvature;

/// <summary>Options of <see cref="PerLayerCurvature.Compute"/>.</summary>
/// <param name="Kind">The curvature: the Hessian (default) or the Gauss–Newton matrix.</param>
/// <param name="K">Eigenvalues per layer (fewer for a layer with fewer parameters); default 5.</param>
/// <param name="Which">Which end of each layer's spectrum; default the largest.</param>
/// <param name="Tolerance">Lanczos's relative residual; default 1e−6, <see cref="LanczosOptions.Tolerance"/>'s.</param>
/// <param name="TraceMethod">How each layer's trace is computed; default Hutchinson's estimator, whose standard error the table shows.</param>
/// <param name="Trace">The trace estimator's options; default its own (<see cref="TraceEstimate.DefaultOptions"/>) with <see cref="Seed"/>.</param>
/// <param name="Seed">Seed of Lanczos's start vectors and of the probes; default 0.</param>
public sealed record PerLayerOptions(
    CurvatureKind Kind = CurvatureKind.Hessian,
    int K = 5,
    SpectrumEnd Which = SpectrumEnd.Largest,
    double Tolerance = 1e-6,
    TraceMethod TraceMethod = TraceMethod.Hutchinson,
    TraceOptions? Trace = null,
    int Seed = 0);

/// <summary>One layer's diagonal block of the curvature: its top eigenvalues and its trace.</summary>
/// <param name="Layer">The layer in words (<see cref="ParameterBlock.Name"/>).</param>
/// <param name="Offset">The index in p of its first parameter (its smallest, for a DAG's level).</param>
/// <param name="Count">Its parameters (the block is Count × Count).</param>
/// <param name="Eigenvalues">The block's eigenvalues at the end asked for (<see cref="EigenvalueMethod"/>).</param>
/// <param name="Residuals">Their residuals ‖A_kk v − θv‖, recomputed.</param>
/// <param name="Converged">Per eigenvalue, whether its residual met the tolerance (else it is a Ritz value, within its residual of an eigenvalue).</param>
/// <param name="Trace">tr A_kk.</param>
/// <param name="TraceStandardError">Its standard error (0 for the exact trace).</param>
/// <param name="Products">Products of the whole operator for this layer (each product of the block is one of A).</param>
/// <param name="Seconds">Wall time of this layer.</param>
public sealed record LayerCurvature(string Layer, int Offset, int Count, IReadOnlyList<double> Eigenvalues, IReadOnlyList<double> Residuals, IReadOnlyList<bool> Converged,
    double Trace, double TraceStandardError, long Products, double Seconds)
{
    /// <summary>
    /// How the eigenvalues were found: <c>dense</c> (LAPACK on the block, when that costs no more products than Lanczos's
    /// budget and fits: every copy of a repeated eigenvalue) or <c>lanczos</c>.
    /// </summary>
    public string EigenvalueMethod { get; init; } = "lanczos";
}

/// <summary>The result of <see cref="PerLayerCurvature.Compute"/>.</summary>
/// <param name="Operator">The curvature (<see cref="CurvatureOperators.Name"/>).</param>
/// <param name="Layers">One entry per layer, first layer first.</param>
/// <param name="Products">Products of the whole operator, all layers together.</param>
/// <param name="Seconds">Wall time.</param>
public sealed record PerLayerResult(string Operator, IReadOnlyList<LayerCurvature> Layers, long Products, double Seconds);

/// <summary>
/// The curvature layer by layer: for each layer's diagonal block A_kk of the Hessian or the Gauss–Newton matrix
/// (<see cref="RestrictedOperator"/> on <see cref="ParameterBlocks"/>), its top-k eigenvalues with recomputed residuals (LAPACK
/// on the dense block when that costs no more products than Lanczos would, else Lanczos) and its trace with a standard error
/// (<see cref="TraceEstimate"/>), one product of A per product of the block.
/// </summary>
/// <remarks>PyHessian's layer-wise view (Yao et al. 2020, §4; its issues 9 and 10 ask for per-layer eigenvalues and traces).</remarks>
public static class PerLayerCurvature
{
    /// <summary>Each layer's eigenvalues and trace of <paramref name="problem"/>'s curvature at its current point.</summary>
    /// <exception cref="LandscapeInputException">The model has no per-layer blocks, or K is below 1.</exception>
    public static PerLayerResult Compute(IResidualProblem problem, PerLayerOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        options ??= new PerLayerOptions();
        limits ??= RunLimits.Default;
        if (options.K < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"K must be at least 1 eigenvalue per layer, got {options.K}"), nameof(options));
        }
        var blocks = ParameterBlocks.Of(problem.Model);
        using var scope = TorchSharp.torch.NewDisposeScope();
        var exact = CurvatureOperators.Create(problem, options.Kind);
        var traceOptions = options.Trace ?? (TraceEstimate.DefaultOptions(options.TraceMethod) with { Seed = options.Seed });
        var watch = Stopwatch.StartNew();
        long start = exact.Applications;
        var layers = new List<LayerCurvature>();
        for (int k = 0; k < blocks.Count; k++)
        {
            var b = blocks[k];
            var layerLimits = limits.Within((double)k / blocks.Count, (double)(k + 1) / blocks.Count, b.Name);
            var layerWatch = Stopwatch.StartNew();
            long before = exact.Applications;
            var block = b.IsContiguous ? new RestrictedOperator(exact, b.Offset, b.Count) : new RestrictedOperator(exact, b.Indices);
            int wanted = Math.Min(options.K, b.Count);
            var (values, residuals, converged, method) = DenseIsCheaper(b.Count, wanted, layerLimits)
                ? Dense(block, wanted, options.Which, layerLimits.Within(0, 0.5, "eigenvalues"))
                : Iterative(block, new LanczosOptions(wanted, options.Which, Tolerance: options.Tolerance, Seed: options.Seed + k, VerifyResiduals: true), layerLimits.Within(0, 0.5, "eigenvalues"));
            var trace = TraceEstimate.Compute(block, options.TraceMethod, traceOptions with { Seed = traceOptions.Seed + k }, layerLimits.Within(0.5, 1, "trace"));
            layers.Add(new LayerCurvature(b.Name, b.Offset, b.Count, values, residuals, converged, trace.Trace, trace.StandardError,
                exact.Applications - before, layerWatch.Elapsed.TotalSeconds) { EigenvalueMethod = method });
        }
        return new PerLayerResult(CurvatureOperators.Name(options.Kind), layers, exact.Applications - start, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// Whether a block's dense eigendecomposition costs no more products than Lanczos's default budget for <paramref name="k"/>
    /// pairs, min(count, max(100, 10k)) (<see cref="LanczosOptions.MaxIterations"/>), and its three count × count matrices fit:
    /// then every copy of a repeated eigenvalue is found, which single-vector Lanczos cannot promise (a Kronecker-structured
    /// block, such as a last layer's 2I ⊗ Σāāᵀ under the squared loss, repeats each eigenvalue ℓ times).
    /// </summary>
    private static bool DenseIsCheaper(int count, int k, RunLimits limits) =>
        count <= Math.Max(100, 10L * k) && limits.Fits(DenseSpectrum.LiveMatrices(true) * MemoryBudget.DenseMatrixBytes(count, count));

    /// <summary>The wanted eigenvalues of the dense block (LAPACK), with ‖Av − θv‖ recomputed.</summary>
    private static (IReadOnlyList<double>, IReadOnlyList<double>, IReadOnlyList<bool>, string) Dense(LinearOperator block, int k, SpectrumEnd which, RunLimits limits)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        var spectrum = DenseSpectrum.Compute(block, eigenvectors: true, limits);
        var chosen = SpectrumOrder.Select(spectrum.Eigenvalues, which, k);
        var index = TorchSharp.torch.tensor(chosen.Select(i => (long)i).ToArray());
        var vectors = spectrum.Eigenvectors!.index_select(1, index);
        var values = TorchSharp.torch.tensor(chosen.Select(i => spectrum.Eigenvalues[i]).ToArray(), dtype: TorchSharp.torch.ScalarType.Float64);
        var residuals = block.ApplyMatrix(vectors).sub(vectors.mul(values.unsqueeze(0))).ColumnNorms().data<double>().ToArray();
        return (chosen.Select(i => spectrum.Eigenvalues[i]).ToArray(), residuals, Enumerable.Repeat(true, k).ToArray(), "dense");
    }

    /// <summary>The wanted eigenpairs by Lanczos with explicit residuals.</summary>
    private static (IReadOnlyList<double>, IReadOnlyList<double>, IReadOnlyList<bool>, string) Iterative(LinearOperator block, LanczosOptions options, RunLimits limits)
    {
        var pairs = Lanczos.Eigenpairs(block, options, limits);
        pairs.Eigenvectors.Dispose();
        return (pairs.Eigenvalues, pairs.ResidualNorms, pairs.Converged, "lanczos");
    }
}
