using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>Options of <see cref="Lanczos.Eigenpairs"/>.</summary>
/// <param name="K">How many eigenpairs; default 1.</param>
/// <param name="Which">Which end of the spectrum; default the largest (PyHessian's and eigenthings' default target).</param>
/// <param name="MaxIterations">
/// The most Lanczos steps (operator applications, restarts after breakdown included); default min(n, max(100, 10k)):
/// without implicit restarts the basis must hold the whole Krylov space, and well-separated extreme eigenvalues of
/// Hessians converge in a few tens of steps (Ghorbani, Krishnan &amp; Xiao 2019, §2.2).
/// </param>
/// <param name="Tolerance">
/// Relative residual: a Ritz pair (θ, v) is converged when ‖Av − θv‖ ≤ tol·|λ|max, |λ|max estimated by the largest
/// |Ritz value|; default 1e−6, the accuracy issue 4 asks of the top-20 benchmark.
/// </param>
/// <param name="Seed">Seed of the Gaussian start vector (and of restart vectors); default 0.</param>
/// <param name="RestartOnBreakdown">
/// When the Krylov space becomes invariant, continue from a fresh random vector orthogonal to it (as ARPACK does), so that
/// multiple eigenvalues and eigenvectors missing from the start vector are found; default true. When false, stop with
/// <see cref="SolverStatus.Breakdown"/>.
/// </param>
/// <param name="BreakdownTolerance">
/// β_j ≤ tol·‖T‖ counts as an invariant subspace, ‖T‖ bounded by Gershgorin (max |α_i| + β_{i−1} + β_i); default 1e−12,
/// a few thousand ε: after two re-orthogonalisations an exactly invariant space leaves β of order ε‖A‖.
/// </param>
/// <param name="VerifyResiduals">
/// Compute ‖Av − θv‖ explicitly for the returned pairs (k more applications) instead of the Lanczos bound β_m|s_{m,i}|,
/// which equals it in exact arithmetic with an orthonormal basis; default false.
/// </param>
public sealed record LanczosOptions(
    int K = 1,
    SpectrumEnd Which = SpectrumEnd.Largest,
    int? MaxIterations = null,
    double Tolerance = 1e-6,
    int Seed = 0,
    bool RestartOnBreakdown = true,
    double BreakdownTolerance = 1e-12,
    bool VerifyResiduals = false);

/// <summary>The eigenpairs found by <see cref="Lanczos.Eigenpairs"/> and how they were found.</summary>
/// <param name="Eigenvalues">The Ritz values, in the order <see cref="LanczosOptions.Which"/> asks for (k of them, fewer only if n &lt; k).</param>
/// <param name="Eigenvectors">The Ritz vectors as the columns of an n × k tensor (unit norm), in the same order; the caller owns it.</param>
/// <param name="ResidualNorms">‖Av − θv‖ of each pair: explicit when <paramref name="ResidualsVerified"/>, else the Lanczos bound.</param>
/// <param name="ResidualsVerified">Whether the residuals were computed explicitly.</param>
/// <param name="Iterations">Lanczos steps taken (the size of T).</param>
/// <param name="Applications">Operator applications (for the Hessian: Hessian-vector products), residual checks included.</param>
/// <param name="Breakdowns">How many times the Krylov space became invariant.</param>
/// <param name="Status">
/// Converged (every wanted pair passed the test, explicitly when <paramref name="ResidualsVerified"/>), stopped at
/// MaxIterations, or Breakdown (an invariant space without restarts, or NaN from the operator).
/// </param>
/// <param name="Converged">
/// Per pair, in the order of <paramref name="Eigenvalues"/>: whether ‖Av − θv‖ ≤ tol·max|θ| (<see cref="ConvergenceTest"/>). A pair
/// that is not converged is a Ritz pair, not an eigenpair: some eigenvalue lies within its residual of θ, and that is all.
/// </param>
public sealed record LanczosResult(
    IReadOnlyList<double> Eigenvalues,
    Tensor Eigenvectors,
    IReadOnlyList<double> ResidualNorms,
    bool ResidualsVerified,
    int Iterations,
    long Applications,
    int Breakdowns,
    SolverStatus Status,
    IReadOnlyList<bool> Converged);

/// <summary>
/// The Lanczos method with full re-orthogonalisation for extreme eigenpairs of a symmetric operator:
/// AQ_m = Q_mT_m + β_m q_{m+1}e_mᵀ with T_m tridiagonal, Ritz pairs (θ_i, Q_ms_i) from T_ms_i = θ_is_i,
/// and residual ‖A(Q_ms_i) − θ_iQ_ms_i‖ = β_m|s_{m,i}|.
/// </summary>
/// <remarks>
/// Golub &amp; Van Loan, Matrix Computations (4th ed.), Algorithm 10.1.1 and §10.3.1 (complete re-orthogonalisation);
/// each new vector is orthogonalised against the whole basis twice, "twice is enough" (Giraud, Langou &amp; Rozložník
/// 2005, Parlett, The Symmetric Eigenvalue Problem §6.9), so Q_m stays orthonormal to working precision and no
/// spurious copies of converged Ritz values appear. Convergence is tested at every step on the k wanted Ritz pairs.
/// An invariant Krylov space (β_j ≈ 0) gives exact eigenvalues; it is reported, never turned into NaN.
/// <para>
/// Single-vector Lanczos finds each distinct eigenvalue once: the Krylov space of one start vector meets an eigenspace in
/// one direction, so a multiple eigenvalue appears once among the Ritz values (no multiplicities). Further copies are
/// found only after the Krylov space becomes invariant and the iteration restarts (<see cref="LanczosOptions.RestartOnBreakdown"/>),
/// which takes at least as many steps as there are distinct eigenvalues. At a point of M, ∇²L has an (n − rank J)-fold
/// eigenvalue near 0; its multiplicity comes from rank J (<see cref="Geometry.HessianSpectrum"/>), not from Lanczos.
/// </para>
/// </remarks>
public static class Lanczos
{
    /// <summary>
    /// The k eigenpairs of the symmetric operator <paramref name="op"/> at the end <see cref="LanczosOptions.Which"/>; the
    /// n × (m + 1) basis within the budget of <paramref name="limits"/>, whose token is checked before each step.
    /// </summary>
    /// <exception cref="ArgumentException">The operator is not symmetric, or an option is out of range.</exception>
    /// <exception cref="Engine.MemoryBudgetExceededException">The basis would exceed the memory budget.</exception>
    public static LanczosResult Eigenpairs(LinearOperator op, LanczosOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= new LanczosOptions();
        limits ??= RunLimits.Default;
        RequireSymmetric(op);
        if (options.K < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"K must be at least 1, got {options.K}"), nameof(options));
        }
        if (!(options.Tolerance >= 0))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"the tolerance must be ≥ 0, got {options.Tolerance}"), nameof(options));
        }
        long n = op.Columns;
        int m = (int)Math.Min(n, options.MaxIterations ?? Math.Max(100, 10L * options.K));
        if (m < 1)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"MaxIterations must be at least 1, got {options.MaxIterations}"), nameof(options));
        }
        long startApplications = op.Applications;
        using var scope = NewDisposeScope();
        var rng = new Random(options.Seed);
        using var basis = new KrylovBasis(op, m, limits);
        var start = tensor(Probes.Gaussian(rng, n), dtype: op.DType, device: op.Device);
        basis.Start(start);
        var status = SolverStatus.StoppedWithoutConvergence;
        int breakdowns = 0;
        int steps = 0;
        // The last Ritz decomposition (of the T that had ritzSize rows) and β at its last row.
        (double[] Values, double[,] Vectors) ritz = ([], new double[0, 0]);
        int ritzSize = 0;
        double ritzBeta = 0;
        while (true)
        {
            limits.ThrowIfCancellationRequested();
            double beta = basis.Step();
            steps++;
            if (ConvergenceTest.IsBreakdown(beta, basis.Alpha[^1]))
            {
                // The operator produced NaN: a breakdown, never a convergence. The Ritz pairs of the steps before stay.
                status = SolverStatus.Breakdown;
                break;
            }
            ritz = basis.Ritz();
            ritzSize = basis.Size;
            ritzBeta = beta;
            if (beta <= options.BreakdownTolerance * basis.NormBound)
            {
                breakdowns++;
                // An invariant space: its Ritz values are exact. Extend with a fresh direction if allowed and possible.
                if (basis.Size >= n)
                {
                    status = SolverStatus.Converged; // the basis spans ℝⁿ: T holds the whole spectrum.
                    break;
                }
                if (!options.RestartOnBreakdown)
                {
                    status = SolverStatus.Breakdown;
                    break;
                }
                if (steps >= m)
                {
                    status = ritz.Values.Length >= options.K && AllConverged(ritz, options, beta)
                        ? SolverStatus.Converged
                        : SolverStatus.StoppedWithoutConvergence;
                    break;
                }
                if (!basis.Restart(tensor(Probes.Gaussian(rng, n), dtype: op.DType, device: op.Device)))
                {
                    status = SolverStatus.Converged; // nothing is left outside the basis numerically.
                    break;
                }
                continue;
            }
            if (ritz.Values.Length >= options.K && AllConverged(ritz, options, beta))
            {
                status = SolverStatus.Converged;
                break;
            }
            if (steps >= m)
            {
                break;
            }
            basis.Advance();
        }

        var wanted = SpectrumOrder.Select(ritz.Values, options.Which, options.K);
        var values = wanted.Select(i => ritz.Values[i]).ToArray();
        var s = new double[ritzSize, wanted.Length];
        for (int r = 0; r < ritzSize; r++)
        {
            for (int c = 0; c < wanted.Length; c++)
            {
                s[r, c] = ritz.Vectors[r, wanted[c]];
            }
        }
        var vectors = basis.Combine(tensor(s, dtype: op.DType, device: op.Device));
        // ‖A(Q s_i) − θ_i Q s_i‖ = β_m |s_{m,i}|.
        var residuals = wanted.Select(i => ritzBeta * Math.Abs(ritz.Vectors[ritzSize - 1, i])).ToArray();
        if (options.VerifyResiduals && wanted.Length > 0)
        {
            var av = op.ApplyMatrix(vectors);
            var theta = tensor(values, dtype: op.DType, device: op.Device);
            residuals = (av - vectors * theta.unsqueeze(0)).ColumnNorms().to_type(ScalarType.Float64).data<double>().ToArray();
        }
        double scale = ritz.Values.Select(Math.Abs).DefaultIfEmpty(0).Max();
        var converged = residuals.Select(r => ConvergenceTest.IsMet(r, scale, options.Tolerance)).ToArray();
        if (status == SolverStatus.Converged && (converged.Contains(false) || values.Length < Math.Min(options.K, n)))
        {
            // The explicit residuals are the measurement: a pair they do not confirm is not converged.
            status = SolverStatus.StoppedWithoutConvergence;
        }
        return new LanczosResult(values, vectors.MoveToOuterDisposeScope(), residuals, options.VerifyResiduals, basis.Size,
            op.Applications - startApplications, breakdowns, status, converged);
    }

    /// <summary>Throws unless the operator is symmetric (every estimator of this folder needs A = Aᵀ).</summary>
    internal static void RequireSymmetric(LinearOperator op)
    {
        if (!op.IsSymmetric)
        {
            throw new ArgumentException($"the estimators need a symmetric operator; {op.GetType().Name} ({op.Rows}×{op.Columns}) is not", nameof(op));
        }
    }

    /// <summary>Whether each of the k wanted Ritz pairs has β_m|s_{m,i}| ≤ tol·max|θ| (<see cref="ConvergenceTest"/>).</summary>
    private static bool AllConverged((double[] Values, double[,] Vectors) ritz, LanczosOptions options, double beta)
    {
        double scale = ritz.Values.Max(Math.Abs);
        int last = ritz.Vectors.GetLength(0) - 1;
        foreach (int i in SpectrumOrder.Select(ritz.Values, options.Which, options.K))
        {
            // ‖A(Q s_i) − θ_i Q s_i‖ = β_m |s_{m,i}|.
            if (!ConvergenceTest.IsMet(beta * Math.Abs(ritz.Vectors[last, i]), scale, options.Tolerance))
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>
/// An orthonormal Krylov basis Q = [q₁ … q_j] built by the Lanczos recurrence with full re-orthogonalisation (twice),
/// and its tridiagonal T = QᵀAQ. Shared by <see cref="Lanczos"/> and <see cref="StochasticLanczosQuadrature"/>.
/// Lives inside the caller's dispose scope.
/// </summary>
internal sealed class KrylovBasis : IDisposable
{
    private readonly LinearOperator _op;
    private readonly Tensor _q;
    private readonly List<double> _alpha = [];
    private readonly List<double> _beta = [];
    private Tensor? _w;

    public KrylovBasis(LinearOperator op, int capacity, RunLimits limits)
    {
        LinearOperator.CheckDenseBudget(op.Columns, capacity, op.DType, limits, $"a Lanczos basis of {capacity} vectors of length {op.Columns}");
        _op = op;
        _q = zeros(op.Columns, capacity, dtype: op.DType, device: op.Device);
    }

    /// <summary>The vectors in the basis (= the size of T).</summary>
    public int Size { get; private set; }

    /// <summary>A Gershgorin bound on ‖T‖ ≤ ‖A‖: max_i |α_i| + β_{i−1} + β_i.</summary>
    public double NormBound { get; private set; }

    /// <summary>The diagonal of T.</summary>
    public IReadOnlyList<double> Alpha => _alpha;

    /// <summary>The off-diagonal of T (β_i couples q_i and q_{i+1}; the last entry is the residual β_m).</summary>
    public IReadOnlyList<double> Beta => _beta;

    /// <summary>Sets q₁ = v/‖v‖.</summary>
    public void Start(Tensor v)
    {
        using var scope = NewDisposeScope();
        _q.select(1, 0).copy_(v / v.Norm2());
        Size = 1;
    }

    /// <summary>
    /// One Lanczos step on the last vector q_j: w = Aq_j − α_jq_j − β_{j−1}q_{j−1}, orthogonalised twice against
    /// q₁…q_j; returns β_j = ‖w‖. Call <see cref="Advance"/> to append w/β_j.
    /// </summary>
    public double Step()
    {
        using var scope = NewDisposeScope();
        int j = Size - 1;
        var q = _q.select(1, j);
        var w = _op.Apply(q);
        double alpha = w.dot(q).item<double>();
        w.sub_(q.Times(alpha));
        if (j > 0 && _beta[j - 1] != 0)
        {
            w.sub_(_q.select(1, j - 1).Times(_beta[j - 1]));
        }
        var basis = _q.narrow(1, 0, Size);
        for (int pass = 0; pass < 2; pass++)
        {
            // Classical Gram-Schmidt against the whole basis, twice ("twice is enough").
            w.sub_(basis.mv(basis.t().mv(w)));
        }
        double beta = w.Norm2().item<double>();
        _alpha.Add(alpha);
        _beta.Add(beta);
        double previous = j > 0 ? _beta[j - 1] : 0;
        NormBound = Math.Max(NormBound, Math.Abs(alpha) + previous + beta);
        _w?.Dispose();
        _w = w.DetachFromDisposeScope();
        return beta;
    }

    /// <summary>Appends q_{j+1} = w/β_j.</summary>
    public void Advance()
    {
        using var scope = NewDisposeScope();
        _q.select(1, Size).copy_(_w!.Over(_beta[^1]));
        Size++;
    }

    /// <summary>
    /// After a breakdown: sets β_j = 0 and appends a fresh direction, <paramref name="v"/> orthogonalised twice against
    /// the basis; false when nothing of v is left (the basis spans the space numerically).
    /// </summary>
    public bool Restart(Tensor v)
    {
        using var scope = NewDisposeScope();
        var basis = _q.narrow(1, 0, Size);
        double norm0 = v.Norm2().item<double>();
        for (int pass = 0; pass < 2; pass++)
        {
            v = v - basis.mv(basis.t().mv(v));
        }
        double norm = v.Norm2().item<double>();
        if (!(norm > 1e-8 * norm0))
        {
            return false;
        }
        _beta[^1] = 0;
        _q.select(1, Size).copy_(v.Over(norm));
        Size++;
        return true;
    }

    /// <summary>The eigen-decomposition of T (Size × Size): Ritz values ascending and the eigenvectors s_i as columns.</summary>
    public (double[] Values, double[,] Vectors) Ritz()
    {
        using var scope = NewDisposeScope();
        int m = Size;
        var t = new double[m, m];
        for (int i = 0; i < m; i++)
        {
            t[i, i] = _alpha[i];
            if (i + 1 < m)
            {
                t[i, i + 1] = t[i + 1, i] = _beta[i];
            }
        }
        var (values, vectors) = linalg.eigh(tensor(t, dtype: ScalarType.Float64));
        var s = new double[m, m];
        var flat = vectors.contiguous().data<double>().ToArray();
        Buffer.BlockCopy(flat, 0, s, 0, flat.Length * sizeof(double));
        return (values.data<double>().ToArray(), s);
    }

    /// <summary>Disposes the pending residual vector (the basis itself lives in the caller's scope).</summary>
    public void Dispose() => _w?.Dispose();

    /// <summary>Q S for a j × k matrix S (j ≤ Size, the first j basis vectors): the Ritz vectors.</summary>
    public Tensor Combine(Tensor s) => _q.narrow(1, 0, s.shape[0]).mm(s);
}
