using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>How <see cref="JacobianFactorization"/> factors J.</summary>
public enum JacobianRoute
{
    /// <summary>The rule of <see cref="JacobianFactorization.ChooseRoute"/>: the SVD of J when it fits, else the Gram matrix.</summary>
    Auto,

    /// <summary>The thin SVD of the dense J (Householder QR, then the SVD of the small triangular factor).</summary>
    Svd,

    /// <summary>The eigendecomposition of K = JJᵀ (<see cref="GramMatrix"/>); J is never formed for the project's MLPs.</summary>
    Gram,

    /// <summary>
    /// The eigendecomposition of the n × n normal matrix JᵀJ = V S² Vᵀ, for n &lt; ℓd (fewer parameters than
    /// equations): the steps solve (JᵀJ + μI)s = Jᵀr in the small space instead of the ℓd × ℓd system of the Gram route.
    /// </summary>
    Normal,
}

/// <summary>
/// J = ∂H/∂p ∈ ℝ^{ℓd×n} at one point in factored form, J = W S Vᵀ with σ₁ ≥ σ₂ ≥ … ≥ 0: the single route of the
/// library to σ(J), the rank decision, J⁺r, the Gauss–Newton and Levenberg–Marquardt steps
/// s(μ) = Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀr) = Jᵀ(JJᵀ + μI)⁻¹r, and the projection Π = I − V_k V_kᵀ onto ker J
/// (the tangent space of M = H⁻¹(0) at a regular point). <see cref="Certificate"/>, <see cref="GaussNewtonProjection"/>,
/// <see cref="Paths.ManifoldWalk"/>, <see cref="Paths.LossSlice"/> and <see cref="Training.GaussNewton"/> all factor J here,
/// so they decide a rank the same way.
/// </summary>
/// <remarks>
/// <para>Routes and their resolution (the absolute error of each σᵢ, below which no decision may rest), from the
/// standard backward-error bounds (Golub &amp; Van Loan, Matrix Computations, 4th ed., §5.2 and §8.6):</para>
/// <list type="bullet">
/// <item><see cref="JacobianRoute.Svd"/>: J is formed; for ℓd ≤ n, Jᵀ = QR and R = U S W′ᵀ give V = QU, W = W′; for
/// ℓd &gt; n, J = QR and R = U S Vᵀ give W = QU. Backward stable: σᵢ to within √max(ℓd, n)·ε·σmax, and minimum-norm
/// solves with error ∝ κ(J).</item>
/// <item><see cref="JacobianRoute.Gram"/>: K = JJᵀ = W S² Wᵀ by a symmetric eigendecomposition; V is never formed
/// (vᵢ = Jᵀwᵢ/σᵢ, Jᵀz by one reverse pass, Ju by forward mode). The eigenvalues of K carry an absolute error
/// ℓd·ε·λmax, so σᵢ = √λᵢ is resolved only down to √(ℓd·ε)·σmax (about 1e−7·σmax at ℓd ≈ 1000), and solves
/// have error ∝ κ(J)².</item>
/// <item><see cref="JacobianRoute.Normal"/>: J is formed and JᵀJ = V S² Vᵀ by a symmetric eigendecomposition of the
/// n × n normal matrix; Wᵀr = S⁻¹VᵀJᵀr. Like the Gram route, σᵢ is resolved only down to √(n·ε)·σmax and solves have
/// error ∝ κ(J)² (the normal equations, Golub &amp; Van Loan §5.3.7), but its matrices are n × n, not ℓd × ℓd.</item>
/// </list>
/// <para>The route rule (<see cref="ChooseRoute"/>): the SVD of J when the memory it holds at once
/// (<see cref="RequiredBytes"/>) is at most min(budget, <see cref="SvdRouteCapBytes"/>); else, of the Gram matrix
/// (ℓd × ℓd) and the normal matrix (n × n, only when n &lt; ℓd), the one that holds less memory.
/// The rank tolerance is the route's resolution; <see cref="Rank"/> reports it with the gap it decided across.</para>
/// </remarks>
public sealed class JacobianFactorization : IDisposable
{
    /// <summary>
    /// The most memory the SVD route may hold however large the budget: 1 GiB, four ℓd × n arrays (J, LAPACK's copy,
    /// Q and V) of 2²⁵ entries. Chosen, not derived: it is the limit the library used before the routes were unified
    /// (ℓd·n ≤ 2²⁵), where the QR of J still takes seconds on a laptop and leaves half the default budget to the
    /// caller's own matrices; above it the Gram route costs O(ℓd²) memory instead of O(ℓd·n).
    /// </summary>
    public const long SvdRouteCapBytes = 1L << 30;

    [ThreadStatic]
    private static int t_factorizations;

    private readonly Tensor? _left;
    private readonly Tensor? _right;
    private readonly Func<Tensor, Tensor>? _times;
    private readonly Func<Tensor, Tensor>? _transposeTimes;
    private readonly Tensor? _ownedJacobian;

    private JacobianFactorization(JacobianRoute route, Tensor? left, Tensor? right, RankDecision rank, long parameters,
        Func<Tensor, Tensor>? times, Func<Tensor, Tensor>? transposeTimes, Tensor? ownedJacobian)
    {
        Route = route;
        _left = left;
        _right = right;
        Rank = rank;
        Parameters = parameters;
        _times = times;
        _transposeTimes = transposeTimes;
        _ownedJacobian = ownedJacobian;
    }

    /// <summary>The route taken (never <see cref="JacobianRoute.Auto"/>).</summary>
    public JacobianRoute Route { get; }

    /// <summary>The rank decision: σ(J) descending, the tolerance (the route's resolution), the rank and its gap.</summary>
    public RankDecision Rank { get; }

    /// <summary>σ₁ ≥ σ₂ ≥ … (min(ℓd, n) of them on the SVD route, ℓd on the Gram route).</summary>
    public IReadOnlyList<double> Sigma => Rank.SingularValues;

    /// <summary>σmax (0 for J = 0).</summary>
    public double SigmaMax => Rank.SigmaMax;

    /// <summary>Singular values at or below this count as zero: dropped from J⁺r and from the normal space.</summary>
    public double Tolerance => Rank.Tolerance;

    /// <summary>ℓd, the rows of J.</summary>
    public int Constraints => Rank.Constraints;

    /// <summary>n, the columns of J.</summary>
    public long Parameters { get; }

    /// <summary>W, ℓd × r, the left singular vectors in the order of <see cref="Sigma"/> (owned by this object); the normal route does not form it.</summary>
    internal Tensor Left => _left ?? throw new InvalidOperationException("the normal route does not form W");

    /// <summary>How many factorizations this thread has made (each <see cref="At"/> or <see cref="Of"/> counts one); for tests.</summary>
    internal static int FactorizationsOnThisThread => t_factorizations;

    /// <summary>
    /// The route rule: <see cref="JacobianRoute.Svd"/> when <see cref="RequiredBytes"/> of the SVD route is at most
    /// min(the memory budget of <paramref name="limits"/>, <see cref="SvdRouteCapBytes"/>), else <see cref="JacobianRoute.Gram"/>.
    /// </summary>
    public static JacobianRoute ChooseRoute(IResidualProblem map, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (SvdRouteFits(map.Constraints, map.ParameterCount, limits))
        {
            return JacobianRoute.Svd;
        }
        // The smaller side: n × n normal equations when n < ℓd and they hold less than the Gram route's ℓd × ℓd matrices.
        return map.ParameterCount < map.Constraints && NormalBytes(map.Constraints, map.ParameterCount) < GramBytes(map)
            ? JacobianRoute.Normal
            : JacobianRoute.Gram;
    }

    /// <summary>
    /// The bytes a factorization by <paramref name="route"/> holds at once (<see cref="JacobianRoute.Auto"/>: the route
    /// <see cref="ChooseRoute"/> takes under the memory budget of <paramref name="limits"/>).
    /// </summary>
    /// <remarks>
    /// SVD route, with m = ℓd and r = min(m, n): four m × n arrays (J, LAPACK geqrf's column-major copy, the thin Q,
    /// and V = QU or W = QU) and seven r × r (R, gesdd's copy of it, U, Wᵀ and gesdd's workspace of about 3r²).
    /// Gram route: what <see cref="GramMatrix.RequiredBytes"/> holds to build K, plus four m × m for the eigendecomposition
    /// (syevd's copy of K, the eigenvectors and its workspace of about 2m²) and one for the eigenvectors in descending order.
    /// </remarks>
    public static long RequiredBytes(IResidualProblem map, JacobianRoute route = JacobianRoute.Auto, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (route == JacobianRoute.Auto)
        {
            route = ChooseRoute(map, limits);
        }
        return route switch
        {
            JacobianRoute.Svd => SvdBytes(map.Constraints, map.ParameterCount),
            JacobianRoute.Normal => NormalBytes(map.Constraints, map.ParameterCount),
            _ => GramBytes(map),
        };
    }

    /// <summary>Bytes of the Gram route (see <see cref="RequiredBytes"/>).</summary>
    private static long GramBytes(IResidualProblem map) =>
        checked(GramMatrix.RequiredBytes(map) + 5 * MemoryBudget.DenseMatrixBytes(map.Constraints, map.Constraints));

    /// <summary>
    /// Bytes of the normal route for an m × n J: J itself, and six n × n (JᵀJ, syevd's copy, the eigenvectors, its
    /// workspace of about 2n², and the eigenvectors in descending order).
    /// </summary>
    private static long NormalBytes(long m, long n) => checked(MemoryBudget.DenseMatrixBytes(m, n) + 6 * MemoryBudget.DenseMatrixBytes(n, n));

    /// <summary>
    /// Factors J at <paramref name="map"/>'s current point by <paramref name="route"/> (default: the rule of
    /// <see cref="ChooseRoute"/>), after checking <see cref="RequiredBytes"/> against the memory budget of <paramref name="limits"/>.
    /// </summary>
    /// <param name="map">The problem.</param>
    /// <param name="route">The route; default the rule of <see cref="ChooseRoute"/>.</param>
    /// <param name="limits">The memory budget; the token, checked between the blocks of JJᵀ or JᵀJ and before the one LAPACK call.</param>
    /// <exception cref="MemoryBudgetExceededException">The route's matrices exceed the budget.</exception>
    public static JacobianFactorization At(IResidualProblem map, JacobianRoute route = JacobianRoute.Auto, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        limits ??= RunLimits.Default;
        if (route == JacobianRoute.Auto)
        {
            route = ChooseRoute(map, limits);
        }
        limits.Require($"factoring J ({map.Constraints} × {map.ParameterCount}) by the {(route switch { JacobianRoute.Svd => "SVD of J", JacobianRoute.Normal => "normal matrix JᵀJ", _ => "Gram matrix JJᵀ" })}",
            RequiredBytes(map, route),
            route == JacobianRoute.Svd ? "use the Gram route (JacobianRoute.Gram), whose memory is O(ℓd²)" : $"use a subset of the data (ℓd = {map.Constraints})",
            route == JacobianRoute.Svd ? BudgetRemedy.Method : BudgetRemedy.Rows);
        return Factor(map, route, limits);
    }

    /// <summary>
    /// Factors J at <paramref name="map"/>'s point by <paramref name="route"/> (not Auto) without a budget check: for callers
    /// that have checked the budget of their whole operation, this factorization included. The token of
    /// <paramref name="limits"/> is checked between the Gram matrix's blocks and once more before the one LAPACK call (svd
    /// or eigh), which cannot be stopped once it runs; the problem checks its own before each batch of rows of J.
    /// </summary>
    internal static JacobianFactorization Factor(IResidualProblem map, JacobianRoute route, RunLimits? limits = null, Tensor? jacobian = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        limits ??= RunLimits.Default;
        if (route == JacobianRoute.Svd)
        {
            using var scope = NewDisposeScope();
            var j = jacobian ?? map.Jacobian();
            limits.ThrowIfCancellationRequested();
            return FromSvd(j);
        }
        if (route == JacobianRoute.Normal)
        {
            using var scope = NewDisposeScope();
            var j = jacobian ?? map.Jacobian();
            limits.ThrowIfCancellationRequested();
            return FromNormal(j, limits.Cancellation);
        }
        var times = new JacobianOperator(map);
        var transposeTimes = new JacobianTransposeOperator(map);
        return FromGram(() =>
        {
            var gram = GramMatrix.Compute(map, limits.WithoutProgress());
            limits.ThrowIfCancellationRequested();
            return gram;
        }, map.Constraints, map.ParameterCount, x => Apply(times, x), y => Apply(transposeTimes, y), null);
    }

    /// <summary>
    /// Factors an explicit matrix <paramref name="jacobian"/> (m × n) by <paramref name="route"/>: Auto is the SVD when
    /// its memory is at most min(the memory budget of <paramref name="limits"/>, <see cref="SvdRouteCapBytes"/>), as for a map.
    /// The input is not kept (the Gram route keeps a copy for its products, the normal route a view of it for Jᵀr).
    /// </summary>
    public static JacobianFactorization Of(Tensor jacobian, JacobianRoute route = JacobianRoute.Auto, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(jacobian);
        limits ??= RunLimits.Default;
        if (jacobian.dim() != 2)
        {
            throw new ArgumentException($"J must be a matrix, got shape [{string.Join(",", jacobian.shape)}]", nameof(jacobian));
        }
        int m = checked((int)jacobian.shape[0]);
        long n = jacobian.shape[1];
        if (route == JacobianRoute.Auto)
        {
            route = SvdRouteFits(m, n, limits) ? JacobianRoute.Svd : n < m ? JacobianRoute.Normal : JacobianRoute.Gram;
        }
        using var scope = NewDisposeScope();
        var j = jacobian.dtype == ScalarType.Float64 ? jacobian : jacobian.to_type(ScalarType.Float64);
        if (route == JacobianRoute.Svd)
        {
            limits.Require($"the SVD of J ({m} × {n})", SvdBytes(m, n), "use the Gram route (JacobianRoute.Gram)");
            return FromSvd(j);
        }
        if (route == JacobianRoute.Normal)
        {
            limits.Require($"the normal matrix JᵀJ ({n} × {n})", NormalBytes(m, n), "use the Gram route (JacobianRoute.Gram)");
            return FromNormal(j, limits.Cancellation);
        }
        limits.Require($"the Gram matrix of J ({m} × {m})", checked(MemoryBudget.DenseMatrixBytes(m, n) + 6 * MemoryBudget.DenseMatrixBytes(m, m)), "use fewer rows", BudgetRemedy.Rows);
        var copy = j.detach().clone().DetachFromDisposeScope();
        return FromGram(() => copy.matmul(copy.t()), m, n, x => copy.matmul(x), y => copy.t().matmul(y), copy);
    }

    /// <summary>The rank decision at <paramref name="map"/>'s point (one factorization by <see cref="At"/>).</summary>
    public static RankDecision RankAt(IResidualProblem map, JacobianRoute route = JacobianRoute.Auto, RunLimits? limits = null)
    {
        using var factorization = At(map, route, limits);
        return factorization.Rank;
    }

    /// <summary>
    /// s(μ) = Σᵢ σᵢ/(σᵢ² + μ) vᵢ (wᵢᵀr) = Jᵀ(JJᵀ + μI)⁻¹r for μ ≥ 0; at μ = 0 the Gauss–Newton step J⁺r, with the
    /// σᵢ ≤ <see cref="Tolerance"/> dropped (a pseudo-inverse, finite at rank-deficient points).
    /// </summary>
    public Tensor Step(Tensor r, double mu)
    {
        ArgumentNullException.ThrowIfNull(r);
        using var scope = NewDisposeScope();
        return StepFromCoefficients(Coefficients(r), mu).MoveToOuterDisposeScope();
    }

    /// <summary>J⁺r = V S⁺ Wᵀ r, the minimum-norm least-squares solution of Js = r (σᵢ ≤ <see cref="Tolerance"/> dropped).</summary>
    public Tensor PseudoInverseTimes(Tensor r) => Step(r, 0);

    /// <summary>
    /// Πu = u − V_k V_kᵀ u, the orthogonal projection onto ker J (V_k: the σᵢ &gt; <see cref="Tolerance"/>), for a vector
    /// u ∈ ℝⁿ or the columns of an n × k block. On the Gram route V_kV_kᵀu = Jᵀ W_k S_k⁻² W_kᵀ (Ju).
    /// </summary>
    public Tensor TangentProjection(Tensor u)
    {
        ArgumentNullException.ThrowIfNull(u);
        using var scope = NewDisposeScope();
        int k = Rank.Rank;
        if (k == 0)
        {
            return u.clone().MoveToOuterDisposeScope();
        }
        var block = u.dim() == 1 ? u.unsqueeze(1) : u;
        Tensor normal;
        if (_right is not null)
        {
            var v = _right.narrow(1, 0, k);
            normal = v.matmul(v.t().matmul(block));
        }
        else
        {
            var w = _left!.narrow(1, 0, k);
            var inverseSquares = tensor(Sigma.Take(k).Select(s => 1 / (s * s)).ToArray(), dtype: float64).unsqueeze(1);
            normal = _transposeTimes!(w.matmul(w.t().matmul(_times!(block)) * inverseSquares));
        }
        var tangent = block - normal;
        return (u.dim() == 1 ? tangent.squeeze(1) : tangent).MoveToOuterDisposeScope();
    }

    /// <summary>u − Πu, the component of u in the row space of J (normal to M at a regular point of M).</summary>
    public Tensor NormalComponent(Tensor u)
    {
        ArgumentNullException.ThrowIfNull(u);
        using var scope = NewDisposeScope();
        return (u - TangentProjection(u)).MoveToOuterDisposeScope();
    }

    /// <summary>c = Wᵀr, the coordinates of r in the left singular vectors.</summary>
    /// <remarks>On the normal route W is not formed: cᵢ = vᵢᵀJᵀr/σᵢ for σᵢ above the tolerance, 0 below it (where the
    /// eigenvalue σᵢ² of JᵀJ is rounding; the directions are dropped from every step, as J⁺ drops them).</remarks>
    internal Tensor Coefficients(Tensor r)
    {
        if (_left is not null)
        {
            return _left.t().matmul(r);
        }
        using var scope = NewDisposeScope();
        var projected = _right!.t().matmul(_transposeTimes!(r));
        var inverse = tensor(Sigma.Select(s => s > Tolerance ? 1 / s : 0).ToArray(), dtype: float64);
        if (projected.dim() == 2)
        {
            inverse = inverse.unsqueeze(1);
        }
        return (projected * inverse).MoveToOuterDisposeScope();
    }

    /// <summary>s(μ) from c = Wᵀr: Jᵀ W g with gᵢ = cᵢ/(σᵢ² + μ) (at μ = 0, gᵢ = 0 for σᵢ ≤ tolerance); JᵀW = VS on the SVD route.</summary>
    internal Tensor StepFromCoefficients(Tensor c, double mu)
    {
        using var scope = NewDisposeScope();
        var sigma = Sigma;
        var weights = new double[sigma.Count];
        for (int i = 0; i < weights.Length; i++)
        {
            double s = sigma[i];
            weights[i] = mu == 0 && s <= Tolerance ? 0 : 1 / (s * s + mu);
            if (!double.IsFinite(weights[i]))
            {
                weights[i] = 0; // σ = 0 and μ = 0: the direction carries nothing.
            }
        }
        var g = c * tensor(weights, dtype: float64);
        Tensor step = _right is not null
            ? _right.matmul(g * tensor(sigma.ToArray(), dtype: float64))
            : _transposeTimes!(_left!.matmul(g));
        return step.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _left?.Dispose();
        _right?.Dispose();
        _ownedJacobian?.Dispose();
    }

    /// <summary>
    /// The SVD side of the route rule: whether the SVD route's matrices for an m × n J (see <see cref="RequiredBytes"/>) fit
    /// min(the memory budget of <paramref name="limits"/>, <see cref="SvdRouteCapBytes"/>).
    /// </summary>
    public static bool SvdRouteFits(long constraints, long parameters, RunLimits? limits = null) =>
        SvdBytes(constraints, parameters) <= Math.Min((limits ?? RunLimits.Default).MemoryBudgetBytes, SvdRouteCapBytes);

    /// <summary>Bytes of the SVD route for an m × n J (see <see cref="RequiredBytes"/>).</summary>
    private static long SvdBytes(long m, long n)
    {
        long r = Math.Min(m, n);
        return checked(4 * MemoryBudget.DenseMatrixBytes(m, n) + 7 * MemoryBudget.DenseMatrixBytes(r, r));
    }

    private static JacobianFactorization FromSvd(Tensor jacobian)
    {
        t_factorizations++;
        using var scope = NewDisposeScope();
        long m = jacobian.shape[0], n = jacobian.shape[1];
        Tensor left, right, s;
        if (m <= n)
        {
            // Jᵀ = QR, R = U S W′ᵀ ⇒ J = W′ S (QU)ᵀ.
            var (q, r) = linalg.qr(jacobian.t());
            var (u, sv, wt) = linalg.svd(r, fullMatrices: false);
            right = q.matmul(u);
            left = wt.t();
            s = sv;
        }
        else
        {
            // J = QR, R = U S Vᵀ ⇒ J = (QU) S Vᵀ.
            var (q, r) = linalg.qr(jacobian);
            var (u, sv, vt) = linalg.svd(r, fullMatrices: false);
            left = q.matmul(u);
            right = vt.t();
            s = sv;
        }
        var sigma = s.data<double>().ToArray();
        double max = sigma.Length > 0 ? sigma[0] : 0;
        var rank = RankDecision.FromSingularValues(sigma, (int)m, Math.Sqrt(Math.Max(m, n)) * Float64.Epsilon * max, "svd of J");
        return new JacobianFactorization(JacobianRoute.Svd, left.contiguous().DetachFromDisposeScope(), right.contiguous().DetachFromDisposeScope(), rank, n, null, null, null);
    }

    /// <summary>
    /// rank J from the ascending eigenvalues λ of a p × p Gram-type matrix of J (JJᵀ, p = ℓd; or JᵀJ, p = n): σᵢ = √max(λᵢ, 0)
    /// in descending order, decided with the resolution √(p·ε)·σmax (the eigenvalues are accurate to about ε·‖JJᵀ‖, so σ to
    /// √(ε·‖JJᵀ‖)). The one rule of the Gram and normal routes and of the distributed certificate.
    /// </summary>
    internal static RankDecision RankFromEigenvalues(IReadOnlyList<double> ascending, int constraints, long order, string basis)
    {
        var sigma = ascending.Reverse().Select(v => Math.Sqrt(Math.Max(v, 0))).ToArray();
        double max = sigma.Length > 0 ? sigma[0] : 0;
        return RankDecision.FromSingularValues(sigma, constraints, Math.Sqrt(order * Float64.Epsilon) * max, basis);
    }

    private static JacobianFactorization FromGram(Func<Tensor> gram, int m, long n,
        Func<Tensor, Tensor> times, Func<Tensor, Tensor> transposeTimes, Tensor? owned)
    {
        t_factorizations++;
        using var scope = NewDisposeScope();
        var (lambda, vectors) = linalg.eigh(gram());
        var rank = RankFromEigenvalues(lambda.data<double>().ToArray(), m, m, "eig of JJᵀ");
        // eigh is ascending; the vectors in descending order, like the SVD's.
        var order = ScalarArithmetic.Range(lambda.shape[0] - 1, -1, -1, int64);
        var left = vectors.index_select(1, order).contiguous().DetachFromDisposeScope();
        return new JacobianFactorization(JacobianRoute.Gram, left, null, rank, n, times, transposeTimes, owned);
    }

    /// <summary>
    /// Columns per block of the normal matrix JᵀJ: 512. Between blocks the cancellation is checked; on digits one-hot at
    /// width 64 (17 970 × 4810) a block is about a second of the product's twenty on 2 cores, and its n × 512 temporary is
    /// a tenth of JᵀJ.
    /// </summary>
    private const int NormalBlockColumns = 512;

    /// <summary>
    /// The normal route: JᵀJ = V S² Vᵀ (eigh, n × n); J kept for Jᵀr. JᵀJ is formed in blocks of
    /// <see cref="NormalBlockColumns"/> columns, with <paramref name="cancellation"/> checked between them and before eigh.
    /// </summary>
    private static JacobianFactorization FromNormal(Tensor jacobian, CancellationToken cancellation = default)
    {
        t_factorizations++;
        using var scope = NewDisposeScope();
        long m = jacobian.shape[0], n = jacobian.shape[1];
        var j = jacobian.detach().contiguous();
        var normal = empty(n, n, dtype: j.dtype, device: j.device);
        for (long start = 0; start < n; start += NormalBlockColumns)
        {
            cancellation.ThrowIfCancellationRequested();
            using var blockScope = NewDisposeScope();
            long count = Math.Min(NormalBlockColumns, n - start);
            normal.narrow(1, start, count).copy_(j.t().matmul(j.narrow(1, start, count))); // (JᵀJ)[:, block] = Jᵀ J[:, block]
        }
        cancellation.ThrowIfCancellationRequested();
        var (lambda, vectors) = linalg.eigh(normal);
        var rank = RankFromEigenvalues(lambda.data<double>().ToArray(), (int)m, n, "eig of JᵀJ");
        // eigh is ascending; the vectors in descending order, like the SVD's.
        var order = ScalarArithmetic.Range(n - 1, -1, -1, int64);
        var right = vectors.index_select(1, order).contiguous().DetachFromDisposeScope();
        var owned = j.DetachFromDisposeScope(); // a new handle (detach), so disposing it never frees the caller's J
        return new JacobianFactorization(JacobianRoute.Normal, null, right, rank, n, null, r => owned.t().matmul(r), owned);
    }

    private static Tensor Apply(LinearOperator op, Tensor x) => x.dim() == 1 ? op.Apply(x) : op.ApplyMatrix(x);
}
