using System.Text.Json.Serialization;
using LossLandscape.Operators;
using LossLandscape.Problem;
using System.Diagnostics;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>How the inertia of ∇²L is computed.</summary>
public enum InertiaMethod
{
    /// <summary>
    /// Gram on M for the squared loss when ℓd &lt; n (the cheaper route to the same answer, see <see cref="Certificate.ChooseMethod"/>);
    /// otherwise dense when its matrices fit the budget (<see cref="Certificate.DenseBytes"/>), else Gram.
    /// </summary>
    Auto,

    /// <summary>All n eigenvalues of the dense Hessian ∇²L (built by n Hessian-vector products).</summary>
    Dense,

    /// <summary>On M with a = 2, ∇²L = 2JᵀJ: the nonzero spectrum is 2·eig(JJᵀ), an ℓd × ℓd problem.</summary>
    Gram,
}

/// <summary>Settings of <see cref="Certificate"/>.</summary>
/// <param name="Method">Dense, Gram, or Auto.</param>
/// <param name="OnManifoldTolerance">The point is on M when max|H_k| ≤ this·max(1, max|y|) (<see cref="OnManifoldTest"/>); default 1e−8.</param>
public sealed record CertificateOptions(InertiaMethod Method = InertiaMethod.Auto, double OnManifoldTolerance = OnManifoldTest.DefaultRelativeTolerance);

/// <summary>The counts of positive, zero and negative eigenvalues of ∇²L, and how they were decided.</summary>
/// <param name="Method">"dense" or "gram".</param>
/// <param name="Positive">Eigenvalues &gt; Tolerance.</param>
/// <param name="Zero">|λ| ≤ Tolerance.</param>
/// <param name="Negative">Eigenvalues &lt; −Tolerance.</param>
/// <param name="Tolerance">The threshold used.</param>
/// <param name="Eigenvalues">The nonzero eigenvalues, descending.</param>
/// <param name="Decided">Whether the counts rest on a resolved gap; false means the counts are no verdict on ∇²L (see Note).</param>
/// <param name="Note">How the counts were decided, or, beginning "not decided: ", why they could not be: the one sentence the table, the report and the JSON give.</param>
/// <param name="ResidualTermNorm">‖∇²L − 2JᵀJ‖₂ where it was computed (dense), the Weyl bound on how far the spectrum is from that of 2JᵀJ.</param>
/// <param name="AllEigenvalues">All n eigenvalues of ∇²L, descending, when the dense method computed them; else null.</param>
public sealed record Inertia(string Method, int Positive, int Zero, int Negative, double Tolerance, double[] Eigenvalues, bool Decided, string Note,
    double? ResidualTermNorm, [property: JsonIgnore] double[]? AllEigenvalues = null);

/// <summary>The certificate at a point: loss, residual, rank of J and dimension of M, inertia of ∇²L.</summary>
/// <param name="N">Parameters n.</param>
/// <param name="D">Data rows d.</param>
/// <param name="Outputs">ℓ.</param>
/// <param name="Constraints">ℓd.</param>
/// <param name="Loss">L(p).</param>
/// <param name="MaxAbsResidual">max|H_k|.</param>
/// <param name="OnManifoldTolerance">The on-M tolerance (<see cref="OnManifoldTest"/>).</param>
/// <param name="OnManifold">Whether the point is on M.</param>
/// <param name="Jacobian">The rank decision of J.</param>
/// <param name="Hessian">The inertia of ∇²L.</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="Triangular">
/// The structural check of <see cref="TriangularActivationCertificate"/>, where it was run (the numerical rank fell short
/// of ℓd or was not decided); null otherwise.
/// </param>
public sealed record CertificateResult(
    int N, int D, int Outputs, int Constraints, double Loss, double MaxAbsResidual, double OnManifoldTolerance, bool OnManifold,
    RankDecision Jacobian, Inertia Hessian, double Seconds, [property: JsonIgnore] TriangularActivationResult? Triangular = null)
{
    /// <summary>n − rank J, the dimension of ker J, at any point.</summary>
    public int KernelDimension => N - Jacobian.Rank;

    /// <summary>
    /// dim M = n − rank J (the dimension of the fibre H⁻¹(0) near the point) where the point is on M; null off M, where
    /// n − rank J (<see cref="KernelDimension"/>) is not the dimension of M. Decided where the rank is
    /// (<see cref="RankDecision.Decided"/>). Written as null off M, not left out.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public int? ManifoldDimension => OnManifold ? KernelDimension : null;

    /// <summary>rank J = ℓd: 0 is a regular value near this point (Theorem 2.1). Decided where the rank is (<see cref="RankDecision.Decided"/>).</summary>
    public bool RegularPoint => Jacobian.FullRowRank;
}

/// <summary>
/// Certifies the claims of Theorem 2.1 / 4.1 and Proposition 2.3 at one point: whether it lies on M,
/// the rank of J (with its tolerance and gap), dim M = n − rank, and the inertia of ∇²L.
/// </summary>
/// <remarks>
/// On M with a = 2, ∇²L = 2JᵀJ + 2Σ H_k∇²f_k = 2JᵀJ, so the positive eigenvalues are 2σᵢ(J)² and their
/// count is rank J. A dense eigendecomposition resolves eigenvalues only down to about n·ε·‖∇²L‖,
/// while constructed points can have σmin(J)/σmax(J) of 1e−7 and less, i.e. 2σmin² far below that
/// resolution. So the dense method reports its own counts only when the gap is resolved, and otherwise
/// decides from σ(J) (the quantity that resolves best) and says so; off M the residual term moves the
/// spectrum by at most ‖2Σ H_k∇²f_k‖₂ (Weyl), which the dense method computes.
/// Where the numerical rank falls short of ℓd or is not decided, the structural check of
/// <see cref="TriangularActivationCertificate"/> (a triangular activation block, as Lemma 3.3 builds) may prove
/// rank J = ℓd exactly; the rank is then reported on that basis, and on M with a = 2 the inertia follows from it
/// (ℓd positive, n − ℓd zero, none negative). Where the pattern does not hold the numerical decision stands. Where
/// σ(J) is over the memory budget but the point is on M with a = 2, the pattern alone decides (no singular values are
/// then reported); if it does not hold, the budget refusal stands.
/// </remarks>
public static class Certificate
{
    /// <summary>
    /// The number of n × n matrices the dense method holds at once: the Hessian from
    /// <see cref="LinearOperator.ToDense"/>, its symmetrised copy, 2JᵀJ, ∇²L − 2JᵀJ, and the working copy LAPACK's
    /// syevd makes of the matrix it diagonalizes (its other workspace is O(n)).
    /// </summary>
    public const int DenseMatrices = 5;

    /// <summary>
    /// The bytes the dense certificate holds at once for n parameters and ℓd constraints: <see cref="DenseMatrices"/>
    /// n × n matrices and syevd's 2n + 1 doubles, J (ℓd × n, kept for 2JᵀJ), and the factorization of J by the route
    /// rule of <see cref="JacobianFactorization"/> (the SVD route's four ℓd × n and seven min(ℓd, n)² arrays; where that
    /// exceeds <see cref="JacobianFactorization.SvdRouteCapBytes"/>, the Gram route's six ℓd × ℓd).
    /// </summary>
    /// <remarks>The one dense-size rule of the library: <see cref="InertiaMethod.Auto"/> takes the dense method when this fits the budget.</remarks>
    public static long DenseBytes(int parameters, int constraints)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(parameters);
        ArgumentOutOfRangeException.ThrowIfNegative(constraints);
        long n = parameters, m = constraints, r = Math.Min(m, n);
        long jacobian = MemoryBudget.DenseMatrixBytes(m, n);
        long svd = checked(4 * jacobian + 7 * MemoryBudget.DenseMatrixBytes(r, r));
        long factorization = svd <= JacobianFactorization.SvdRouteCapBytes ? svd : checked(6 * MemoryBudget.DenseMatrixBytes(m, m));
        return checked(DenseMatrices * MemoryBudget.DenseMatrixBytes(n, n) + MemoryBudget.DenseMatrixBytes(2 * n + 1, 1) + jacobian + factorization);
    }

    /// <summary>
    /// The largest n for which the dense certificate fits the memory budget of <paramref name="limits"/> (<see cref="DenseBytes"/>),
    /// with ℓd = <paramref name="constraints"/> or, when null, ℓd = n (the most the overparameterized case ℓd ≤ n can need).
    /// About 3 970 at the default budget with ℓd = n, and about 7 300 with ℓd ≪ n.
    /// </summary>
    public static int DenseLimit(RunLimits? limits = null, int? constraints = null)
    {
        long budgetBytes = (limits ?? RunLimits.Default).MemoryBudgetBytes;
        // DenseBytes grows with n: bisect on [0, 2²⁴] (n = 2²⁴ already needs petabytes, and 8·5·n² stays far from overflow).
        long lo = 0, hi = 1L << 24;
        while (lo < hi)
        {
            long mid = (lo + hi + 1) / 2;
            if (DenseBytes((int)mid, constraints ?? (int)mid) <= budgetBytes)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return (int)lo;
    }

    /// <summary>
    /// The method <see cref="InertiaMethod.Auto"/> picks. Gram when the point is on M, a = 2 and ℓd &lt; n: there
    /// ∇²L = 2JᵀJ + R with ‖R‖ of the order of max|H| (negligible on M), so the Gram route gives the same counts as the
    /// dense one, and costs less in every term — ℓd Jacobian rows (one reverse pass each) against n Hessian-vector
    /// products (two to three passes each), and one O((ℓd)²n) factorisation of J against two O(n³) eigen-decompositions
    /// plus the O(ℓd·n²) product JᵀJ. The saving grows as (n/ℓd)²; measured at n = 3001 on a point of M: 2.5 s against 73 s.
    /// Otherwise (off M, a ≠ 2, or ℓd ≥ n) dense when all its matrices fit the budget (<see cref="DenseBytes"/>), else Gram.
    /// </summary>
    /// <param name="n">Parameters.</param>
    /// <param name="constraints">ℓd.</param>
    /// <param name="squaredLoss">Whether a = 2.</param>
    /// <param name="onManifold">Whether the point is on M (<see cref="OnManifoldTest"/>).</param>
    /// <param name="limits">The budget of dense objects.</param>
    public static InertiaMethod ChooseMethod(int n, int constraints, bool squaredLoss, bool onManifold, RunLimits? limits = null)
    {
        if (onManifold && squaredLoss && constraints < n)
        {
            return InertiaMethod.Gram;
        }
        return (limits ?? RunLimits.Default).Fits(DenseBytes(n, constraints)) ? InertiaMethod.Dense : InertiaMethod.Gram;
    }

    /// <summary>Computes the certificate for <paramref name="map"/>'s model and data.</summary>
    /// <exception cref="MemoryBudgetExceededException">
    /// The chosen method's matrices exceed the memory budget of <paramref name="limits"/> (and, for the gram method, the
    /// triangular activation pattern does not decide the point).
    /// </exception>
    /// <param name="map">The model and data.</param>
    /// <param name="options">Method and on-M tolerance.</param>
    /// <param name="limits">
    /// The memory budget of the certificate's matrices (<see cref="DenseBytes"/>, <see cref="JacobianFactorization.RequiredBytes"/>);
    /// the token, checked at each stage and block; the stages reported as they happen: "Jacobian", "dense Hessian j/n" (per
    /// block of columns), "eigenvalues", "residual term", or "Gram matrix" and "singular values".
    /// </param>
    public static CertificateResult Compute(IResidualProblem map, CertificateOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.LossFunction.RequireResidualSum("the certificate (on M?, rank of J, dim M, inertia)");
        ComputePrecision.RequireFloat64(map, "the certificate (on M?, rank of J, dim M, inertia)");
        options ??= new CertificateOptions();
        limits ??= RunLimits.Default;
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        int n = map.ParameterCount, d = map.Data.Count, l = map.Data.OutputDim, m = map.Constraints;
        limits.Checkpoint("residuals", 0);
        var manifold = OnManifoldTest.At(map, options.OnManifoldTolerance);
        double maxAbs = manifold.MaxAbsResidual, tol = manifold.Tolerance;
        bool onManifold = manifold.Holds;
        double loss = map.Loss();
        var method = options.Method;
        if (method == InertiaMethod.Auto)
        {
            method = ChooseMethod(n, m, map.Exponent == 2.0, onManifold, limits);
        }
        var route = JacobianFactorization.ChooseRoute(map, limits);
        // Large ℓd on the Gram route: full row rank proved by Cholesky (GramCholesky) before any eigendecomposition.
        bool cholesky = method == InertiaMethod.Gram && GramCholesky.Applies(map, route);
        // The budget is checked once, for every matrix the chosen method holds at once.
        if (method == InertiaMethod.Dense)
        {
            limits.Require($"the dense certificate (all n eigenvalues of the n × n Hessian, n = {n})", DenseBytes(n, m),
                $"use the gram method (2·eig(JJᵀ), valid on M, ℓd × ℓd = {m} × {m})", BudgetRemedy.Method);
        }
        else if (!limits.Fits(cholesky ? GramCholesky.RequiredBytes(map) : JacobianFactorization.RequiredBytes(map, route)))
        {
            // σ(J) does not fit; on M with a = 2 the exact pattern alone may still decide rank and inertia.
            if (onManifold && map.Exponent == 2.0 && limits.Fits(TriangularActivationCertificate.RequiredBytes(map)))
            {
                limits.Checkpoint("triangular activation block", 0.5);
                var structural = TriangularActivationCertificate.Check(map);
                if (structural.Holds && structural.ProvenRank == m)
                {
                    var exact = new RankDecision(m, 0, 0, [], m, TriangularActivationCertificate.Basis, Exact: true);
                    limits.Report("done", 1);
                    return new CertificateResult(n, d, l, m, loss, maxAbs, tol, onManifold, exact,
                        InertiaRule.FromJacobian(exact, n, squaredLoss: true, onManifold: true), watch.Elapsed.TotalSeconds, structural);
                }
            }
            limits.Require($"the gram certificate (σ(J) of the {m} × {n} Jacobian)", cholesky ? GramCholesky.RequiredBytes(map) : JacobianFactorization.RequiredBytes(map, route),
                GramAlternative(m), BudgetRemedy.Method | BudgetRemedy.Rows);
        }

        RankDecision rank;
        Inertia inertia;
        if (method == InertiaMethod.Dense)
        {
            limits.Checkpoint("Jacobian", 0.02);
            var j = map.Jacobian();
            using (var factors = JacobianFactorization.Factor(map, route, limits.WithoutProgress(), j))
            {
                rank = factors.Rank;
            }
            inertia = DenseInertia(map, j, rank, limits.Within(0.05, 1, ""));
        }
        else
        {
            RankDecision? proven = null;
            if (cholesky)
            {
                limits.Checkpoint("Gram matrix JJᵀ per layer", 0.05);
                using var gram = GramMatrix.Compute(map, limits.Within(0.05, 0.6, ""));
                limits.Checkpoint("Cholesky test of JJᵀ − tI", 0.6);
                proven = GramCholesky.Decide(gram, GramCholesky.FormingLength(map));
            }
            if (proven is not null)
            {
                rank = proven;
            }
            else
            {
                if (cholesky)
                {
                    // The test proved nothing (K may be singular): the eigenvalues decide, if they fit.
                    limits.Require($"the eigenvalues of JJᵀ ({m} × {m}) after the Cholesky test proved nothing", JacobianFactorization.RequiredBytes(map, route),
                        GramAlternative(m), BudgetRemedy.Method | BudgetRemedy.Rows);
                }
                limits.Checkpoint(route switch { JacobianRoute.Svd => "Jacobian and its SVD", JacobianRoute.Normal => "normal matrix JᵀJ and its eigenvalues", _ => "Gram matrix JJᵀ and its eigenvalues" }, 0.05);
                using var factors = JacobianFactorization.Factor(map, route, limits.WithoutProgress());
                rank = factors.Rank;
            }
            inertia = InertiaRule.FromJacobian(rank, n, map.Exponent == 2.0, onManifold);
        }
        TriangularActivationResult? triangular = null;
        if (!rank.Decided || rank.Rank < m)
        {
            limits.Checkpoint("triangular activation block", 0.98);
            triangular = TriangularActivationCertificate.Check(map);
            if (triangular.Holds && triangular.ProvenRank == m)
            {
                rank = rank with { Rank = m, Basis = TriangularActivationCertificate.Basis, Exact = true };
                // On M with a = 2 the σ(J) route decides the inertia from the exact rank; off M, or for a ≠ 2, the
                // inertia already computed stands (the exact rank says nothing about the residual term there).
                if (onManifold && map.Exponent == 2.0)
                {
                    inertia = InertiaRule.FromJacobian(rank, n, squaredLoss: true, onManifold: true);
                }
            }
        }
        limits.Report("done", 1);
        return new CertificateResult(n, d, l, m, loss, maxAbs, tol, onManifold, rank, inertia, watch.Elapsed.TotalSeconds, triangular);
    }

    /// <summary>
    /// What to do when the ℓd × ℓd route does not fit: Lanczos on the Gram operator v ↦ J(Jᵀv), two products per step and no
    /// ℓd × ℓd matrix; the Gauss–Newton operator JᵀJ has the same nonzero eigenvalues, which <c>spectrum --operator ggn</c> computes.
    /// </summary>
    private static string GramAlternative(int m) =>
        $"raise the memory budget, use Lanczos on the Gram operator v ↦ J(Jᵀv) (the spectrum's Lanczos method on the Gauss–Newton operator gives its nonzero eigenvalues 2σᵢ², the extreme ones), or a subset of the data (ℓd = {m})";

    private static Inertia DenseInertia(IResidualProblem map, Tensor jacobian, RankDecision rank, RunLimits limits)
    {
        using var scope = NewDisposeScope();
        int n = map.ParameterCount;
        // The dense Hessian by n Hessian-vector products in blocks of columns, symmetrised (the one route to the dense ∇²L).
        var raw = new HessianOperator(map).ToDense(limits: limits.Progress is { } outer ? limits with { Progress = new DenseColumns(outer, n) } : limits);
        var hessian = raw.Plus(raw.t()).OverInPlace(2);
        raw.Dispose(); // only the symmetrised copy is needed from here on (DenseMatrices counts the two at their peak)
        limits.Checkpoint("eigenvalues", 0.85);
        var lambda = linalg.eigvalsh(hessian).data<double>();
        double? residualTerm = null;
        if (map.Exponent == 2.0)
        {
            limits.Checkpoint("residual term ‖∇²L − 2JᵀJ‖₂", 0.92);
            // 2JᵀJ, then ∇²L − 2JᵀJ in place of it: one more n × n matrix, not two.
            var difference = jacobian.t().matmul(jacobian).TimesInPlace(-2.0).PlusInPlace(hessian);
            residualTerm = linalg.eigvalsh(difference).abs().max().item<double>();
        }
        return InertiaRule.Dense(lambda.ToArray(), residualTerm, rank);
    }

    /// <summary>Maps <see cref="LinearOperator.ToDense"/>'s column progress to "dense Hessian j/n" over [0, 0.8] of the dense stage.</summary>
    private sealed class DenseColumns(IProgress<ProgressReport> outer, int n) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) =>
            ProgressReport.Report(outer, $"dense Hessian {(int)Math.Round(value.Fraction * n)}/{n}", 0.8 * value.Fraction);
    }
}
