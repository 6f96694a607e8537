using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>Options of <see cref="ThickRestartLanczos.Eigenpairs"/>.</summary>
/// <param name="K">How many eigenpairs; default 20 (the smallest-20 goal of issue 11).</param>
/// <param name="Which">Which end of the spectrum; default the smallest (the case single-vector Lanczos does not converge on large Hessians).</param>
/// <param name="BasisSize">
/// m, the most Lanczos vectors held (the projected matrix is at most m × m; one more column holds the residual vector);
/// default <see cref="ThickRestartLanczos.DefaultBasisSize(int, long, RunLimits?)"/>: as many vectors as half the memory budget holds, at
/// most <see cref="ThickRestartLanczos.DefaultBasisCap"/> and at least max(<see cref="ThickRestartLanczos.MinimumDefaultBasis"/>, 4k).
/// With m ≥ 2k each restart keeps about m/2 Ritz vectors (the k wanted and as many nearest to them as a buffer) and takes
/// about m/2 new steps.
/// </param>
/// <param name="MaxIterations">
/// The most operator applications (one an iteration), the verification of the returned pairs included (k of them are
/// reserved for it); default max(<see cref="ThickRestartLanczos.DefaultMaxIterations"/>, 2m): 2000, the budget issue 11 sets for the 20 smallest
/// eigenvalues, or two fills of a larger basis.
/// </param>
/// <param name="Tolerance">
/// Relative residual: a Ritz pair (θ, v) is converged when ‖Av − θv‖ ≤ tol·‖A‖, ‖A‖ estimated by the largest |Ritz value| seen
/// in any restart; default 1e−6 (<see cref="LanczosOptions.Tolerance"/>).
/// </param>
/// <param name="Seed">Seed of the Gaussian start vector (and of the vectors that replace an invariant space); default 0.</param>
/// <param name="BreakdownTolerance">β_j ≤ tol·‖A‖ counts as an invariant subspace; default 1e−12 (<see cref="LanczosOptions.BreakdownTolerance"/>).</param>
public sealed record ThickRestartOptions(
    int K = 20,
    SpectrumEnd Which = SpectrumEnd.Smallest,
    int? BasisSize = null,
    long? MaxIterations = null,
    double Tolerance = 1e-6,
    int Seed = 0,
    double BreakdownTolerance = 1e-12);

/// <summary>The eigenpairs found by <see cref="ThickRestartLanczos.Eigenpairs"/> and how they were found.</summary>
/// <param name="Eigenvalues">The Ritz values, in the order <see cref="ThickRestartOptions.Which"/> asks for (k of them; fewer only if n &lt; k).</param>
/// <param name="Eigenvectors">The Ritz vectors as the columns of an n × k tensor (unit norm), same order; the caller owns it.</param>
/// <param name="ResidualNorms">‖Av − θv‖ of each pair, computed explicitly (one application each, counted in <paramref name="Applications"/>).</param>
/// <param name="ResidualBounds">The Lanczos bound |β_m·s_{m,i}| of each pair at the end (equal to the residual in exact arithmetic).</param>
/// <param name="Converged">
/// Per pair: whether its explicit residual ‖Av − θv‖ ≤ tol·<paramref name="NormEstimate"/>. A pair that is not converged is a
/// Ritz pair, not an eigenpair: some eigenvalue lies within its residual of θ, and that is all.
/// </param>
/// <param name="NormEstimate">‖A‖ as estimated: the largest |Ritz value| seen.</param>
/// <param name="BasisSize">m, the bound on the basis.</param>
/// <param name="LargestBasis">The most Lanczos vectors ever held at once (≤ m; the residual vector not counted).</param>
/// <param name="Restarts">Thick restarts done.</param>
/// <param name="Steps">Lanczos steps taken (one application each), over all restarts.</param>
/// <param name="Applications">Operator applications (Hessian-vector products), the verification included; ≤ the budget.</param>
/// <param name="Breakdowns">How many times the Krylov space became invariant (and was continued with a fresh direction).</param>
/// <param name="Status">
/// Converged when every returned pair's explicit residual passed the test; StoppedWithoutConvergence when the budget ran out
/// first; Breakdown when the operator returned NaN.
/// </param>
public sealed record ThickRestartResult(
    IReadOnlyList<double> Eigenvalues,
    Tensor Eigenvectors,
    IReadOnlyList<double> ResidualNorms,
    IReadOnlyList<double> ResidualBounds,
    IReadOnlyList<bool> Converged,
    double NormEstimate,
    int BasisSize,
    int LargestBasis,
    int Restarts,
    int Steps,
    long Applications,
    int Breakdowns,
    SolverStatus Status);

/// <summary>
/// Thick-restart Lanczos for k extreme eigenpairs of a symmetric operator with a basis of at most m vectors: Lanczos with
/// full re-orthogonalisation until the basis holds m vectors, then a restart that keeps p Ritz vectors y_i = V s_i nearest
/// the wanted end and the residual vector v_{m+1}, so that AV_p = V_pΘ_p + v_{m+1}bᵀ with b_i = β_m s_{m,i}; the next step
/// from v_{m+1} gives the arrowhead-plus-tridiagonal projected matrix
/// <code>
/// T = [ Θ_p  b    0  ]
///     [ bᵀ   α   β   ]
///     [ 0    β   ⋱   ]
/// </code>
/// and the residual of each Ritz pair is ‖A(Vs_i) − θ_iVs_i‖ = |β_m s_{m,i}|.
/// </summary>
/// <remarks>
/// Wu &amp; Simon, "Thick-restart Lanczos method for large symmetric eigenvalue problems", SIAM J. Matrix Anal. Appl. 22(2),
/// 2000, §2–3 (the restart is mathematically the implicit restart of Sorensen 1992 with exact shifts, without the QR sweeps).
/// Every new vector is orthogonalised twice against the whole basis, kept Ritz vectors included ("twice is enough": Giraud,
/// Langou &amp; Rozložník 2005), so the basis stays orthonormal to working precision.
/// <para>
/// Rule: every max(50, m/10) steps and at every fill of the basis, the run stops when each of the k wanted Ritz pairs of the
/// current projected matrix T_j has |β_j s_{j,i}| ≤ tol·‖A‖ (‖A‖ the largest |Ritz value| seen), or when the budget less k is spent; the k returned pairs are then verified explicitly, ‖Av − θv‖ from one product each, and
/// only a verified residual counts as converged. Unlike single-vector Lanczos without restarts, the kept Ritz vectors let a
/// multiple eigenvalue appear more than once once a copy has converged and rounding brings in the next direction, but the
/// multiplicity is still not guaranteed; at a point of M it comes from rank J (<see cref="Geometry.HessianSpectrum"/>).
/// </para>
/// </remarks>
public static class ThickRestartLanczos
{
    /// <summary>The smallest default basis: 100 vectors, the minimum of the plain Lanczos default (<see cref="LanczosOptions.MaxIterations"/>), so the same memory.</summary>
    public const int MinimumDefaultBasis = 100;

    /// <summary>
    /// The largest default basis: 1500 vectors. Measured (bench/README.md, "lanczos"): at trained digits points the 20 smallest
    /// eigenvalues of ∇²L lie in a cluster with gaps of order 1e−6·‖H‖, and a basis of 1400 converged all 20 within 2000
    /// products at n = 4106 and n = 17,098 where 100, 400, 600 and 1000 did not; 1500 leaves a margin. Memory: 1501·n·8 bytes
    /// (205 MB at n = 17,098); above n ≈ 89,000 half the default budget holds fewer and the budget decides.
    /// </summary>
    public const int DefaultBasisCap = 1500;

    /// <summary>The default budget of products: 2000, the budget issue 11 sets for the 20 smallest eigenvalues (or 2m if larger).</summary>
    public const int DefaultMaxIterations = 2000;

    /// <summary>
    /// The share of the memory budget the default basis may take: one half, leaving the other half to the operator (a Hessian-vector
    /// product holds a few n-vectors and the autograd graph of one batch).
    /// </summary>
    private const int BudgetShareDivisor = 2;

    /// <summary>
    /// Steps between convergence tests while the basis fills: m/10 but at least 50, so a run whose pairs converge early stops
    /// within about a tenth of a fill instead of filling a large basis first; each test costs one m × m eigh (about 0.5 s at m = 1500).
    /// </summary>
    private const int MinimumCheckInterval = 50;

    /// <summary>
    /// A fresh direction keeps less than this fraction of its norm after two orthogonalisations: the basis spans the space
    /// numerically (1e−8 ≈ √ε, the loss of a vector that is in the span up to rounding; <see cref="KrylovBasis"/>'s rule).
    /// </summary>
    private const double FreshDirectionTolerance = 1e-8;

    /// <summary>
    /// The basis size m used for k wanted pairs on an operator of size n when none is given: the most vectors (plus the residual
    /// vector) that half of the memory budget of <paramref name="limits"/> holds in float64, capped at <see cref="DefaultBasisCap"/> and at n, but at
    /// least min(n, max(<see cref="MinimumDefaultBasis"/>, 4k)) (if that much does not fit, the run refuses with the bytes it needs).
    /// </summary>
    /// <param name="k">Wanted pairs.</param>
    /// <param name="n">Operator size.</param>
    /// <param name="limits">The memory budget; default <see cref="RunLimits.Default"/>'s.</param>
    public static int DefaultBasisSize(int k, long n, RunLimits? limits = null)
    {
        long budget = (limits ?? RunLimits.Default).MemoryBudgetBytes;
        long fits = (budget / BudgetShareDivisor / (sizeof(double) * Math.Max(n, 1))) - 1;
        long floor = Math.Min(n, Math.Max(MinimumDefaultBasis, 4L * k));
        return (int)Math.Max(floor, Math.Min(Math.Min(n, DefaultBasisCap), fits));
    }

    /// <summary>
    /// The k eigenpairs of the symmetric operator <paramref name="op"/> at the end <see cref="ThickRestartOptions.Which"/>; the
    /// n × (m + 1) basis within the budget of <paramref name="limits"/>, whose token is checked before each step.
    /// </summary>
    /// <exception cref="ArgumentException">The operator is not symmetric.</exception>
    /// <exception cref="LandscapeInputException">An option is out of range.</exception>
    /// <exception cref="MemoryBudgetExceededException">The basis would exceed the memory budget.</exception>
    public static ThickRestartResult Eigenpairs(LinearOperator op, ThickRestartOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= new ThickRestartOptions();
        limits ??= RunLimits.Default;
        Lanczos.RequireSymmetric(op);
        long n = op.Columns;
        if (options.K < 1 || options.K > n)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"K must be in 1 … n = {n}, got {options.K}"), nameof(options));
        }
        if (!(options.Tolerance >= 0))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the tolerance must be ≥ 0, got {options.Tolerance}"), nameof(options));
        }
        int k = options.K;
        int m = (int)Math.Min(n, options.BasisSize ?? DefaultBasisSize(k, n, limits));
        if (m < Math.Min(n, k + 1))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the basis must hold more than K = {k} vectors, got {options.BasisSize}"), nameof(options));
        }
        long budget = options.MaxIterations ?? Math.Max(DefaultMaxIterations, 2L * m);
        int checkInterval = Math.Max(MinimumCheckInterval, m / 10);
        if (budget < k + 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the budget must exceed K = {k} applications (k are reserved for the verification), got {budget}"), nameof(options));
        }
        // Restart keeps the k wanted and a buffer of the next nearest, about half the basis: p = k + ⌊(m − 2k)/2⌋ when m ≥ 2k.
        int keep = Math.Max(k, k + ((m - (2 * k)) / 2));
        keep = Math.Min(keep, m - 1);

        LinearOperator.CheckDenseBudget(n, m + 1L, op.DType, limits, $"a thick-restart Lanczos basis of {m + 1} vectors of length {n}");
        long startApplications = op.Applications;
        long stepBudget = budget - k;
        using var scope = NewDisposeScope();
        var rng = new Random(options.Seed);
        var v = zeros(n, m + 1, dtype: op.DType, device: op.Device);
        var t = new double[m, m];
        var start = tensor(Probes.Gaussian(rng, n), dtype: op.DType, device: op.Device);
        v.select(1, 0).copy_(start / start.Norm2());

        int kept = 0;        // Ritz vectors at the head of the basis (the arrowhead).
        int size = 0;        // Expanded vectors: T is size × size; v_{size} (column size) is the next to expand.
        int largest = 0, restarts = 0, breakdowns = 0;
        double scale = 0, lastBeta = 0;
        var status = SolverStatus.StoppedWithoutConvergence;
        (double[] Values, double[,] Vectors) ritz = ([], new double[0, 0]);
        int ritzSize = 0;
        bool exhausted = false;

        while (true)
        {
            // Expand until the basis holds m vectors or the budget is spent.
            bool nan = false;
            int nextCheck = size + checkInterval;
            while (size < m && size < nextCheck && op.Applications - startApplications < stepBudget)
            {
                limits.ThrowIfCancellationRequested();
                using var stepScope = NewDisposeScope();
                int j = size;
                var q = v.select(1, j);
                var w = op.Apply(q);
                double alpha = w.dot(q).item<double>();
                w.sub_(q.Times(alpha));
                if (j == kept && kept > 0)
                {
                    // The first step after a restart: w −= Σ_i b_i y_i (the arrowhead row of T).
                    var b = new double[kept];
                    for (int i = 0; i < kept; i++)
                    {
                        b[i] = t[i, j];
                    }
                    w.sub_(v.narrow(1, 0, kept).mv(tensor(b, dtype: op.DType, device: op.Device)));
                }
                else if (j > 0)
                {
                    w.sub_(v.select(1, j - 1).Times(t[j - 1, j]));
                }
                var basis = v.narrow(1, 0, j + 1);
                for (int pass = 0; pass < 2; pass++)
                {
                    // Classical Gram–Schmidt against the whole basis, kept Ritz vectors included, twice ("twice is enough").
                    w.sub_(basis.mv(basis.t().mv(w)));
                }
                double beta = w.Norm2().item<double>();
                if (ConvergenceTest.IsBreakdown(beta, alpha))
                {
                    nan = true;
                    break;
                }
                t[j, j] = alpha;
                scale = Math.Max(scale, Math.Abs(alpha));
                size = j + 1;
                largest = Math.Max(largest, size);
                lastBeta = beta;
                if (beta <= options.BreakdownTolerance * Math.Max(scale, double.Epsilon))
                {
                    // An invariant subspace: its Ritz values are exact. Continue from a fresh direction orthogonal to it, coupling 0.
                    breakdowns++;
                    lastBeta = 0;
                    var fresh = tensor(Probes.Gaussian(rng, n), dtype: op.DType, device: op.Device);
                    double norm0 = fresh.Norm2().item<double>();
                    for (int pass = 0; pass < 2; pass++)
                    {
                        fresh = fresh - basis.mv(basis.t().mv(fresh));
                    }
                    double norm = fresh.Norm2().item<double>();
                    if (size >= n || !(norm > FreshDirectionTolerance * norm0))
                    {
                        exhausted = true; // nothing is left outside the basis numerically: T holds exact eigenvalues.
                        break;
                    }
                    v.select(1, size).copy_(fresh.Over(norm));
                    continue;
                }
                v.select(1, size).copy_(w.Over(beta));
                if (size < m)
                {
                    t[j, j + 1] = t[j + 1, j] = beta;
                }
            }
            if (nan)
            {
                status = SolverStatus.Breakdown;
                break;
            }
            if (size == 0)
            {
                break;
            }

            // Ritz pairs of the projected matrix T (size × size); residual bounds |β_m s_{m,i}|.
            ritz = Eigh(t, size);
            ritzSize = size;
            foreach (double theta in ritz.Values)
            {
                scale = Math.Max(scale, Math.Abs(theta));
            }
            var wanted = SpectrumOrder.Select(ritz.Values, options.Which, k);
            bool allConverged = exhausted || (wanted.Length >= k && wanted.All(i =>
                ConvergenceTest.IsMet(lastBeta * Math.Abs(ritz.Vectors[size - 1, i]), scale, options.Tolerance)));
            if (allConverged)
            {
                status = SolverStatus.Converged;
                break;
            }
            if (size < m)
            {
                if (op.Applications - startApplications < stepBudget)
                {
                    continue; // an intermediate test: not yet converged, keep filling the basis.
                }
                break; // the budget is spent (the basis is not full).
            }

            // Thick restart: V_p ← V S_p (the p Ritz vectors nearest the wanted end), v_{p+1} ← v_{m+1}; T ← [Θ_p b; bᵀ ·].
            int p = Math.Min(keep, size - 1);
            var chosen = SpectrumOrder.Select(ritz.Values, options.Which, p);
            using (var restartScope = NewDisposeScope())
            {
                var s = new double[size, p];
                for (int r = 0; r < size; r++)
                {
                    for (int c = 0; c < p; c++)
                    {
                        s[r, c] = ritz.Vectors[r, chosen[c]];
                    }
                }
                var y = v.narrow(1, 0, size).mm(tensor(s, dtype: op.DType, device: op.Device));
                var residualVector = v.select(1, size).clone();
                v.narrow(1, 0, p).copy_(y);
                v.select(1, p).copy_(residualVector);
            }
            Array.Clear(t);
            for (int c = 0; c < p; c++)
            {
                t[c, c] = ritz.Values[chosen[c]];
                // b_c = β_m s_{m,c}: the coupling of Ritz vector c to the residual vector.
                t[c, p] = t[p, c] = lastBeta * ritz.Vectors[size - 1, chosen[c]];
            }
            kept = p;
            size = p;
            restarts++;
        }

        int steps = (int)(op.Applications - startApplications);
        // The k wanted pairs of the last projected matrix, verified explicitly (k products, reserved in the budget).
        var final = ritzSize > 0 ? SpectrumOrder.Select(ritz.Values, options.Which, k) : [];
        var values = final.Select(i => ritz.Values[i]).ToArray();
        var bounds = final.Select(i => lastBeta * Math.Abs(ritz.Vectors[ritzSize - 1, i])).ToArray();
        Tensor vectors;
        double[] residuals;
        if (final.Length > 0)
        {
            var sk = new double[ritzSize, final.Length];
            for (int r = 0; r < ritzSize; r++)
            {
                for (int c = 0; c < final.Length; c++)
                {
                    sk[r, c] = ritz.Vectors[r, final[c]];
                }
            }
            vectors = v.narrow(1, 0, ritzSize).mm(tensor(sk, dtype: op.DType, device: op.Device));
            var av = op.ApplyMatrix(vectors);
            var theta = tensor(values, dtype: op.DType, device: op.Device);
            residuals = (av - (vectors * theta.unsqueeze(0))).ColumnNorms().to_type(ScalarType.Float64).data<double>().ToArray();
        }
        else
        {
            vectors = zeros(n, 0, dtype: op.DType, device: op.Device);
            residuals = [];
        }
        var converged = residuals.Select(r => ConvergenceTest.IsMet(r, scale, options.Tolerance)).ToArray();
        if (status == SolverStatus.Converged && (converged.Contains(false) || values.Length < k))
        {
            // The explicit residuals are the measurement: a pair they do not confirm is not converged.
            status = SolverStatus.StoppedWithoutConvergence;
        }
        return new ThickRestartResult(values, vectors.MoveToOuterDisposeScope(), residuals, bounds, converged, scale, m, largest, restarts,
            steps, op.Applications - startApplications, breakdowns, status);
    }

    /// <summary>eigh of the leading size × size block of T: Ritz values ascending, eigenvectors s_i as columns.</summary>
    private static (double[] Values, double[,] Vectors) Eigh(double[,] t, int size)
    {
        using var scope = NewDisposeScope();
        var block = new double[size, size];
        for (int i = 0; i < size; i++)
        {
            for (int j = 0; j < size; j++)
            {
                block[i, j] = t[i, j];
            }
        }
        var (values, vectors) = linalg.eigh(tensor(block, dtype: ScalarType.Float64));
        var s = new double[size, size];
        var flat = vectors.contiguous().data<double>().ToArray();
        Buffer.BlockCopy(flat, 0, s, 0, flat.Length * sizeof(double));
        return (values.data<double>().ToArray(), s);
    }
}
