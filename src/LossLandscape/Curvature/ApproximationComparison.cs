using System.Diagnostics;
using LossLandscape.Approximations;
using LossLandscape.Engine;
using LossLandscape.Operators;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>The curvature approximations <see cref="ApproximationComparison"/> measures.</summary>
public enum ApproximationKind
{
    /// <summary>KFAC (KFC for convolutions), <see cref="KfacOperator"/>.</summary>
    Kfac,

    /// <summary>EKFAC, <see cref="EkfacOperator"/>.</summary>
    Ekfac,

    /// <summary>
    /// The diagonal: exact for the Gauss–Newton matrix (<see cref="GaussNewtonDiagonal"/>), Hutchinson's estimate for the Hessian
    /// (<see cref="HutchinsonDiagonal"/>).
    /// </summary>
    Diagonal,

    /// <summary>The exact per-layer block diagonal of the matrix measured against (<see cref="BlockDiagonalOperator"/>).</summary>
    Block,
}

/// <summary>Options of <see cref="ApproximationComparison.Compute"/>.</summary>
/// <param name="Kinds">The approximations to measure, in this order; default all four.</param>
/// <param name="Against">The exact matrix G: the Gauss–Newton matrix (default, what KFAC, EKFAC and the GGN diagonal approximate) or the Hessian.</param>
/// <param name="K">Top eigenvalues compared; default 5 (PyHessian's top-k view is of a few).</param>
/// <param name="Tolerance">Lanczos's relative residual for the top-K pairs of A and of G; default 1e−6, <see cref="LanczosOptions.Tolerance"/>'s.</param>
/// <param name="FrobeniusProbes">
/// Rademacher probes of the Frobenius norms when the dense matrices do not fit the budget: ‖M‖²_F = E‖Mz‖²; default 30, enough
/// for a standard error of a few percent of the error (the relative spread of a mean of N draws of a χ²-like variable is ≈ √(2/N)).
/// </param>
/// <param name="Seed">Seed of the probes, of Lanczos's start vectors and of Hutchinson's diagonal; default 0.</param>
/// <param name="Kfac">KFAC's and EKFAC's output-space factor; default exact.</param>
/// <param name="DiagonalProbes">Probes of Hutchinson's diagonal of the Hessian; default 100 (<see cref="DiagonalOptions.Probes"/>).</param>
public sealed record ApproximationOptions(
    IReadOnlyList<ApproximationKind>? Kinds = null,
    CurvatureKind Against = CurvatureKind.GaussNewton,
    int K = 5,
    double Tolerance = 1e-6,
    int FrobeniusProbes = 30,
    int Seed = 0,
    KfacOptions? Kfac = null,
    int DiagonalProbes = TraceEstimate.HutchinsonProbes)
{
    /// <summary>The kinds measured: <see cref="Kinds"/>, or all four.</summary>
    public IReadOnlyList<ApproximationKind> EffectiveKinds => Kinds ?? [ApproximationKind.Kfac, ApproximationKind.Ekfac, ApproximationKind.Diagonal, ApproximationKind.Block];
}

/// <summary>How far one approximation A is from the exact G.</summary>
/// <param name="Kind">The approximation's name (<see cref="ApproximationComparison.Names"/>): kfac, ekfac, diag or block.</param>
/// <param name="FrobeniusError">‖A − G‖_F / ‖G‖_F.</param>
/// <param name="FrobeniusErrorStdError">Its standard error: 0 when computed from the dense matrices, else the delta method's over the probes.</param>
/// <param name="FrobeniusMethod">dense (exact) or hutchinson (estimated from <see cref="ApproximationOptions.FrobeniusProbes"/> probes).</param>
/// <param name="TraceError">|tr A − tr G| / |tr G| (exact from the dense matrices, else from the same probes).</param>
/// <param name="TopEigenvalues">A's top-K eigenvalues, descending: by LAPACK from the dense matrix when it fits the budget, else by Lanczos.</param>
/// <param name="TopEigenvalueResiduals">Their residuals ‖Av − θv‖.</param>
/// <param name="ExactTopEigenvalues">G's top-K eigenvalues, descending, by the same route (the same for every kind).</param>
/// <param name="ExactTopEigenvalueResiduals">Their residuals ‖Gv − θv‖.</param>
/// <param name="SubspaceOverlap">
/// ‖U_Aᵀ U_G‖²_F for the top-K eigenvectors: the sum of the squared cosines of the principal angles, K when the spaces agree, 0
/// when orthogonal. Where the K-th eigenvalue of A or G repeats past K (a Kronecker block's ℓ copies), the K vectors taken from
/// that eigenspace are LAPACK's or Lanczos's choice, and so is the overlap.
/// </param>
/// <param name="Seconds">Wall time of this approximation: building it and measuring it.</param>
/// <param name="Products">
/// Products of A and of the exact operator this approximation used (its construction and measurement; G's shared reference not
/// included; on the dense route the block diagonal is read from G's dense matrix and uses none).
/// </param>
public sealed record ApproximationError(
    string Kind,
    double FrobeniusError,
    double FrobeniusErrorStdError,
    string FrobeniusMethod,
    double TraceError,
    IReadOnlyList<double> TopEigenvalues,
    IReadOnlyList<double> TopEigenvalueResiduals,
    IReadOnlyList<double> ExactTopEigenvalues,
    IReadOnlyList<double> ExactTopEigenvalueResiduals,
    double SubspaceOverlap,
    double Seconds,
    long Products);

/// <summary>The result of <see cref="ApproximationComparison.Compute"/>.</summary>
/// <param name="Against">The exact matrix (<see cref="CurvatureOperators.Name"/>).</param>
/// <param name="K">K.</param>
/// <param name="Approximations">One entry per kind, in the order asked.</param>
/// <param name="ExactTrace">tr G (exact from the dense matrix, else Hutchinson's estimate from the probes).</param>
/// <param name="ExactProducts">Products of G for the shared reference: its dense matrix or probes, and its top-K Lanczos pairs.</param>
/// <param name="ExactSeconds">Wall time of the shared reference.</param>
/// <param name="Note">How the errors were computed, in words.</param>
public sealed record ApproximationReport(
    string Against,
    int K,
    IReadOnlyList<ApproximationError> Approximations,
    double ExactTrace,
    long ExactProducts,
    double ExactSeconds,
    string Note);

/// <summary>
/// Measures curvature approximations A against the exact G on the user's own network: the relative Frobenius error
/// ‖A − G‖_F/‖G‖_F (from the dense matrices when <see cref="DenseMatrices"/> n × n matrices fit the budget, else estimated from Rademacher probes,
/// ‖M‖²_F = E‖Mz‖², with a standard error), the relative error of the trace, the top-K eigenvalues of both with residuals
/// (LAPACK on the dense matrices, else Lanczos), and the overlap of the top-K eigenspaces.
/// </summary>
/// <remarks>
/// The Frobenius estimate with probes: X = ‖(A − G)z‖², Y = ‖Gz‖² over the same N probes, R = X̄/Ȳ, and its variance by the
/// delta method Var R ≈ (Var X − 2R Cov(X, Y) + R² Var Y)/(N Ȳ²); the error is √R with standard error SE(R)/(2√R)
/// (Hutchinson 1990 for E‖Mz‖² = ‖M‖²_F with Rademacher z; Casella &amp; Berger, Statistical Inference, §5.5.4 for the delta
/// method). The subspace overlap Σ cos²θᵢ = ‖U_AᵀU_G‖²_F (Golub &amp; Van Loan, Matrix Computations, §6.4.3, principal angles).
/// </remarks>
public static class ApproximationComparison
{
    /// <summary>The names of the kinds on the command line and in JSON, in <see cref="ApproximationKind"/>'s order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["kfac", "ekfac", "diag", "block"];

    /// <summary>The kind named <paramref name="name"/> (<see cref="Names"/>).</summary>
    /// <exception cref="LandscapeInputException">An unknown name.</exception>
    public static ApproximationKind Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        int k = Names.ToList().IndexOf(name.Trim());
        return k >= 0 ? (ApproximationKind)k : throw new LandscapeInputException($"the approximation '{name}' is not one of {string.Join(", ", Names)}");
    }

    /// <summary>Dense n × n matrices the exact route holds at once: G, A, A − G (then eigh's working copy of A) and A's eigenvectors.</summary>
    public const int DenseMatrices = 4;

    /// <summary>n × probes blocks the probe route holds at once: the probes, G's products, A's products and their difference.</summary>
    public const int ProbeBlocks = 4;

    /// <summary>Measures each approximation of <paramref name="options"/> against the exact matrix of <paramref name="problem"/> at its current point.</summary>
    /// <exception cref="LandscapeInputException">
    /// K outside 1 … n; a kind that does not apply to the model (KFAC, EKFAC and the block diagonal need per-layer blocks,
    /// <see cref="ParameterBlocks"/>); the Monte Carlo Fisher with a loss that is no likelihood.
    /// </exception>
    public static ApproximationReport Compute(IResidualProblem problem, ApproximationOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(problem);
        options ??= new ApproximationOptions();
        limits ??= RunLimits.Default;
        long n = problem.ParameterCount;
        if (options.K < 1 || options.K > n)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"K = {options.K} top eigenvalues is out of range: the matrix has n = {n}, so K must be in 1 … {n}"), nameof(options));
        }
        if (options.FrobeniusProbes < 2)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the Frobenius estimate needs at least 2 probes for a standard error, got {options.FrobeniusProbes}"), nameof(options));
        }
        var kinds = options.EffectiveKinds;
        if (kinds.Count == 0)
        {
            throw new LandscapeInputException("no approximation to measure: name at least one of " + string.Join(", ", Names), nameof(options));
        }
        if (kinds.Any(k => k is ApproximationKind.Kfac or ApproximationKind.Ekfac or ApproximationKind.Block))
        {
            var blockKinds = string.Join(", ", kinds.Where(k => k != ApproximationKind.Diagonal).Select(k => Names[(int)k]));
            IReadOnlyList<ParameterBlock> blocks;
            try
            {
                blocks = ParameterBlocks.Of(problem.Model);
            }
            catch (LandscapeInputException e)
            {
                throw new LandscapeInputException($"{blockKinds} need the model's layers: {e.Message}");
            }
            if (kinds.Any(k => k is ApproximationKind.Kfac or ApproximationKind.Ekfac))
            {
                KfacOperator.RequireLayers(blocks); // a DAG's levels: no Kronecker factors
            }
        }

        var exact = CurvatureOperators.Create(problem, options.Against);
        double denseBytes = (double)DenseMatrices * sizeof(double) * n * n;
        bool dense = denseBytes < long.MaxValue && limits.Fits((long)denseBytes);
        var lanczos = new LanczosOptions(K: options.K, Which: SpectrumEnd.Largest, Tolerance: options.Tolerance, Seed: options.Seed, VerifyResiduals: true);
        using var scope = NewDisposeScope();
        var watch = Stopwatch.StartNew();
        long exactStart = exact.Applications;
        // The shared reference: G dense (n products) or G applied to the probes; its top-K pairs.
        Tensor? exactDense = null, probes = null, exactProbed = null;
        double exactTrace;
        if (dense)
        {
            exactDense = exact.ToDense(limits: limits.Within(0, 0.3, "exact matrix"));
            exactTrace = exactDense.diagonal().sum().item<double>();
        }
        else
        {
            limits.Require($"the Frobenius probes ({ProbeBlocks} blocks of {n} × {options.FrobeniusProbes})", (long)Math.Min(long.MaxValue, (double)ProbeBlocks * sizeof(double) * n * options.FrobeniusProbes),
                "use fewer probes", BudgetRemedy.Probes);
            probes = Hutchinson.RademacherBlock(new Random(options.Seed), n, options.FrobeniusProbes, exact);
            exactProbed = exact.ApplyMatrix(probes);
            exactTrace = probes.mul(exactProbed).sum().item<double>() / options.FrobeniusProbes;
        }
        var exactPairs = exactDense is not null ? TopPairs(exactDense, options.K) : Pairs(Lanczos.Eigenpairs(exact, lanczos, limits.Within(0.3, 0.5, "exact top eigenvalues")));
        long exactProducts = exact.Applications - exactStart;
        double exactSeconds = watch.Elapsed.TotalSeconds;

        var results = new List<ApproximationError>();
        for (int i = 0; i < kinds.Count; i++)
        {
            limits.ThrowIfCancellationRequested();
            using var kindScope = NewDisposeScope();
            var kindLimits = limits.Within(0.5 + (0.5 * i / kinds.Count), 0.5 + (0.5 * (i + 1) / kinds.Count), Names[(int)kinds[i]]);
            var kindWatch = Stopwatch.StartNew();
            long exactBefore = exact.Applications;
            var (approximation, owned) = Build(problem, kinds[i], options, exact, kindLimits);
            try
            {
                double frobenius, frobeniusError, traceError;
                (IReadOnlyList<double> Values, Tensor Vectors, IReadOnlyList<double> Residuals)? densePairs = null;
                if (exactDense is not null)
                {
                    // The block diagonal's dense matrix is G's with the entries outside the blocks zeroed: read from G, not
                    // rebuilt from L·n masked products of it.
                    var a = approximation is BlockDiagonalOperator block ? Masked(exactDense, block.Blocks) : approximation.ToDense(limits: kindLimits);
                    densePairs = TopPairs(a, options.K);
                    frobenius = a.sub(exactDense).norm().item<double>() / Math.Max(exactDense.norm().item<double>(), double.Epsilon);
                    frobeniusError = 0;
                    traceError = Math.Abs(a.diagonal().sum().item<double>() - exactTrace) / Math.Abs(exactTrace);
                }
                else
                {
                    var applied = approximation.ApplyMatrix(probes!);
                    (frobenius, frobeniusError) = RatioOfNorms(applied.sub(exactProbed!), exactProbed!);
                    double trace = probes!.mul(applied).sum().item<double>() / options.FrobeniusProbes;
                    traceError = Math.Abs(trace - exactTrace) / Math.Abs(exactTrace);
                }
                var pairs = densePairs ?? Pairs(Lanczos.Eigenpairs(approximation, lanczos, kindLimits));
                var cosines = pairs.Vectors.t().mm(exactPairs.Vectors);
                double overlap = cosines.mul(cosines).sum().item<double>();
                // A's applications, and the exact operator's made for this kind (the block diagonal's masked products, Hutchinson's probes).
                long products = approximation.Applications + (exact.Applications - exactBefore);
                results.Add(new ApproximationError(Names[(int)kinds[i]], frobenius, frobeniusError, dense ? "dense" : "hutchinson", traceError,
                    pairs.Values, pairs.Residuals, exactPairs.Values, exactPairs.Residuals, overlap, kindWatch.Elapsed.TotalSeconds, products));
            }
            finally
            {
                owned?.Dispose();
            }
        }
        string note = dense
            ? FormattableString.Invariant($"relative errors from the dense n × n matrices (n = {n}); top-{options.K} eigenpairs of each by LAPACK's eigh (every copy of a repeated eigenvalue, as Kronecker products have), residuals ‖Av − θv‖ recomputed")
            : FormattableString.Invariant($"the dense n × n matrices (n = {n}) exceed the budget: Frobenius and trace errors estimated from {options.FrobeniusProbes} Rademacher probes (E‖Mz‖² = ‖M‖²_F); top-{options.K} eigenpairs by Lanczos with explicit residuals (a repeated eigenvalue may appear once)");
        return new ApproximationReport(CurvatureOperators.Name(options.Against), options.K, results, exactTrace, exactProducts, exactSeconds, note);
    }

    /// <summary>The approximation of <paramref name="kind"/> and what to dispose.</summary>
    private static (LinearOperator Approximation, IDisposable? Owned) Build(IResidualProblem problem, ApproximationKind kind, ApproximationOptions options, LinearOperator exact, RunLimits limits)
    {
        switch (kind)
        {
            case ApproximationKind.Kfac:
                var kfac = KfacOperator.Create(problem, options.Kfac, limits);
                return (kfac, kfac);
            case ApproximationKind.Ekfac:
                var ekfac = EkfacOperator.Create(problem, options.Kfac, limits);
                return (ekfac, ekfac);
            case ApproximationKind.Diagonal when options.Against == CurvatureKind.GaussNewton:
                var diagonal = GaussNewtonDiagonal.Compute(problem, limits);
                return (diagonal, diagonal);
            case ApproximationKind.Diagonal:
                var estimate = HutchinsonDiagonal.Estimate(exact, new DiagonalOptions(options.DiagonalProbes, Seed: options.Seed), limits);
                var op = estimate.ToOperator();
                return (op, op);
            default:
                var block = new BlockDiagonalOperator(exact, ParameterBlocks.Of(problem.Model));
                return (block, block);
        }
    }

    /// <summary>diag(G₁₁, …, G_LL): <paramref name="dense"/> with every entry outside the blocks zeroed.</summary>
    private static Tensor Masked(Tensor dense, IReadOnlyList<ParameterBlock> blocks)
    {
        // The mask Σ_k m_k m_kᵀ, m_k the indicator of block k's parameters.
        var mask = zeros_like(dense);
        foreach (var b in blocks)
        {
            var indicator = zeros(dense.shape[0], dtype: dense.dtype, device: dense.device);
            b.SetRows(indicator, ones(b.Count, dtype: dense.dtype, device: dense.device));
            mask.PlusInPlace(indicator.outer(indicator));
        }
        return dense.mul(mask);
    }

    /// <summary>The top <paramref name="k"/> eigenpairs of a dense symmetric matrix by LAPACK (descending), with ‖Mv − θv‖ recomputed.</summary>
    private static (IReadOnlyList<double> Values, Tensor Vectors, IReadOnlyList<double> Residuals) TopPairs(Tensor matrix, int k)
    {
        long n = matrix.shape[0];
        var (values, vectors) = linalg.eigh(matrix.Plus(matrix.t()).Over(2));
        var top = values.narrow(0, n - k, k).flip(0);
        var basis = vectors.narrow(1, n - k, k).flip(1);
        var residuals = matrix.mm(basis).sub(basis.mul(top.unsqueeze(0))).ColumnNorms();
        return (top.data<double>().ToArray(), basis, residuals.data<double>().ToArray());
    }

    /// <summary>Lanczos's pairs in the shape of <see cref="TopPairs"/>.</summary>
    private static (IReadOnlyList<double> Values, Tensor Vectors, IReadOnlyList<double> Residuals) Pairs(LanczosResult result) =>
        (result.Eigenvalues, result.Eigenvectors, result.ResidualNorms);

    /// <summary>√(X̄/Ȳ) for X = ‖Dz‖², Y = ‖Gz‖² column by column, and its standard error by the delta method.</summary>
    private static (double Value, double StandardError) RatioOfNorms(Tensor difference, Tensor exact)
    {
        var x = difference.mul(difference).sum(0L).data<double>().ToArray();
        var y = exact.mul(exact).sum(0L).data<double>().ToArray();
        int count = x.Length;
        double mx = x.Average(), my = y.Average();
        if (!(my > 0))
        {
            return (double.NaN, double.NaN);
        }
        double r = mx / my;
        double vx = 0, vy = 0, cxy = 0;
        for (int m = 0; m < count; m++)
        {
            vx += (x[m] - mx) * (x[m] - mx);
            vy += (y[m] - my) * (y[m] - my);
            cxy += (x[m] - mx) * (y[m] - my);
        }
        vx /= count - 1;
        vy /= count - 1;
        cxy /= count - 1;
        double varianceOfRatio = Math.Max(0, (vx - (2 * r * cxy) + (r * r * vy)) / (count * my * my));
        double value = Math.Sqrt(r);
        return (value, value > 0 ? Math.Sqrt(varianceOfRatio) / (2 * value) : Math.Sqrt(Math.Sqrt(varianceOfRatio)));
    }
}
