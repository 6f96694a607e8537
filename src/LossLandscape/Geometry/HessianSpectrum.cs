using System.Text.Json.Serialization;
using LossLandscape.Curvature;
using LossLandscape.Operators;
using LossLandscape.Problem;
using System.Diagnostics;
using System.Globalization;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>How <see cref="HessianSpectrum.Compute"/> finds eigenvalues.</summary>
public enum SpectrumMethod
{
    /// <summary>All n eigenvalues of the dense matrix (n operator products and one n × n eigh).</summary>
    Dense,

    /// <summary>2·eig(JJᵀ) and n − ℓd zeros: the spectrum of 2JᵀJ, which is that of ∇²L on M (a = 2).</summary>
    Gram,

    /// <summary>
    /// k extreme eigenvalues by <see cref="Lanczos"/> (the smallest by <see cref="ThickRestartLanczos"/>, where they are not the zeros
    /// known from rank J), each with its residual and whether it converged.
    /// </summary>
    Lanczos,

    /// <summary>The spectral density by <see cref="StochasticLanczosQuadrature"/>.</summary>
    Slq,
}

/// <summary>Options of <see cref="HessianSpectrum.Compute"/>.</summary>
/// <param name="Method">Dense, Gram, Lanczos (default) or SLQ.</param>
/// <param name="Operator">∇²L (default) or the Gauss–Newton matrix.</param>
/// <param name="K">How many eigenvalues; default 10.</param>
/// <param name="Which">Which end of the spectrum, and the order of the answer; default the largest.</param>
/// <param name="Tolerance">Lanczos: a pair is converged when ‖Hv − λv‖ ≤ this·max|θ|; default 1e−6 (<see cref="LanczosOptions.Tolerance"/>).</param>
/// <param name="MaxIterations">
/// Lanczos: the most steps; default min(n, max(100, 10k)) (<see cref="LanczosOptions.MaxIterations"/>). For the smallest end, which
/// runs <see cref="ThickRestartLanczos"/>, the budget of products, verification included (must exceed k); default max(2000, 2m)
/// (<see cref="ThickRestartOptions.MaxIterations"/>).
/// </param>
/// <param name="Seed">Seed of the Lanczos start vector and of the SLQ probes; default 0.</param>
/// <param name="OnManifoldTolerance">The on-M rule's relative tolerance (<see cref="OnManifoldTest"/>); default 1e−8.</param>
/// <param name="Slq">SLQ's steps, probes, broadening and grid; default <see cref="SlqOptions"/>'s (its Seed is this record's).</param>
public sealed record SpectrumOptions(
    SpectrumMethod Method = SpectrumMethod.Lanczos,
    CurvatureKind Operator = CurvatureKind.Hessian,
    int K = 10,
    SpectrumEnd Which = SpectrumEnd.Largest,
    double Tolerance = 1e-6,
    int? MaxIterations = null,
    int Seed = 0,
    double OnManifoldTolerance = OnManifoldTest.DefaultRelativeTolerance,
    SlqOptions? Slq = null);

/// <summary>
/// The zero eigenvalues of the operator known from rank J, with multiplicity: 2JᵀJ has n − rank J of them exactly, and at a
/// point of M with a = 2 the eigenvalues of ∇²L = 2JᵀJ + R lie within ‖R‖₂ of them (Weyl).
/// </summary>
/// <param name="Multiplicity">n − rank J (≥ n − ℓd, since rank J ≤ ℓd).</param>
/// <param name="Bound">Each of them lies in [−Bound, Bound]: ‖R‖₂ (an estimate, <paramref name="ResidualTermSteps"/>) + 2·max(σ_{rank+1}, resolution)².</param>
/// <param name="ResidualTermNorm">The estimate of ‖R‖₂ = ‖∇²L − 2JᵀJ‖₂ (0 for the Gauss–Newton operator, which is 2JᵀJ).</param>
/// <param name="ResidualTermSteps">
/// Lanczos steps on <see cref="ResidualTermOperator"/> for the estimate: |θ| + ρ of its largest-magnitude Ritz pair. A Ritz value
/// lies inside the spectrum, so this is an estimate of ‖R‖₂ (exact when Lanczos has found the extreme eigenvalue of R), not a
/// guaranteed upper bound. 0 when R was not needed.
/// </param>
/// <param name="Rank">rank J and the gap it was decided across.</param>
/// <param name="LowestNonzero">2σ_rank(J)² − ‖R‖₂: every other eigenvalue is at least this (Weyl); ∞ when rank J = 0.</param>
public sealed record ZeroEigenvalues(int Multiplicity, double Bound, double ResidualTermNorm, int ResidualTermSteps, [property: JsonIgnore] RankDecision Rank, double LowestNonzero)
{
    /// <summary>Whether ‖R‖₂ was estimated by Lanczos (false: known to be 0).</summary>
    public bool ResidualTermEstimated => ResidualTermSteps > 0;

    /// <summary>rank J (<see cref="Rank"/>'s, the JSON's <c>rank</c>).</summary>
    [JsonPropertyName("rank")]
    public int JacobianRank => Rank.Rank;

    /// <summary>ℓd, the bound on rank J.</summary>
    public int Constraints => Rank.Constraints;

    /// <summary>The rule, in words.</summary>
    public string Rule => "zero within ±bound, multiplicity n − rank J from rank J ≤ ℓd (Weyl: ∇²L = 2JᵀJ + R on M)";
}

/// <summary>The eigenvalues one method found, in the order asked for, and everything needed to judge them.</summary>
/// <param name="Method">The method used.</param>
/// <param name="OperatorKind">∇²L or the Gauss–Newton matrix.</param>
/// <param name="Operator">The operator as output names it (the Gram route says "(gram)").</param>
/// <param name="Which">The end asked for, which is also the order of <paramref name="Eigenvalues"/>.</param>
/// <param name="Eigenvalues">k values (fewer only when n &lt; k; none for SLQ). A value whose <paramref name="Converged"/> is false is a Ritz value, not an eigenvalue.</param>
/// <param name="Residuals">Lanczos: ‖Hv − λv‖ of each value, computed explicitly (an eigenvalue lies within it); else null.</param>
/// <param name="Converged">Per value: whether it is an eigenvalue to the stated accuracy (Lanczos: its residual passed <see cref="ConvergenceTest"/>; exact methods: true).</param>
/// <param name="Products">Operator (Hessian-vector) products used, checks included.</param>
/// <param name="Status">How the computation ended (<see cref="SolverStatus"/>); exact methods are Converged.</param>
/// <param name="Note">How the values were computed, in words, with the numbers a reader needs to judge them.</param>
/// <param name="Seconds">Wall time.</param>
/// <remarks>
/// In JSON: what the method produced, by these names (<see cref="Products"/> as <c>hessianVectorProducts</c>, the SLQ options
/// as <c>options</c>); the eigenvalues, the on-M test, the inertia's counts and SLQ's density are written by the CLI, at this
/// record's level, where the method has them.
/// </remarks>
public sealed record SpectrumResult(
    SpectrumMethod Method,
    [property: JsonIgnore] CurvatureKind OperatorKind,
    string Operator,
    SpectrumEnd Which,
    [property: JsonIgnore] IReadOnlyList<double> Eigenvalues,
    IReadOnlyList<double>? Residuals,
    [property: JsonIgnore] IReadOnlyList<bool> Converged,
    [property: JsonPropertyName("hessianVectorProducts")] long Products,
    SolverStatus Status,
    string Note,
    double Seconds = 0)
{
    /// <summary>Lanczos steps taken (Lanczos only).</summary>
    public int? Iterations { get; init; }

    /// <summary>max|A − Aᵀ|/max|A| of the dense matrix before symmetrising (dense only).</summary>
    public double? Asymmetry { get; init; }

    /// <summary>All n eigenvalues, descending (dense only: all were computed).</summary>
    public IReadOnlyList<double>? AllEigenvalues { get; init; }

    /// <summary>The density, quadrature rules and moments (SLQ only).</summary>
    [JsonIgnore]
    public SlqResult? Slq { get; init; }

    /// <summary>The SLQ options used (SLQ only).</summary>
    [JsonPropertyName("options")]
    public SlqOptions? SlqOptions { get; init; }

    /// <summary>The on-M test at the point, where the method depends on it (Gram; Lanczos smallest for ∇²L).</summary>
    [JsonIgnore]
    public OnManifoldTest? Manifold { get; init; }

    /// <summary>The zeros known from rank J, when the answer is made of them (Lanczos smallest on M, or of 2JᵀJ).</summary>
    public ZeroEigenvalues? Zeros { get; init; }

    /// <summary>The inertia of ∇²L by the σ(J) route (Gram on ∇²L only; <see cref="InertiaRule.FromJacobian"/>).</summary>
    [JsonIgnore]
    public Inertia? Inertia { get; init; }
}

/// <summary>
/// The one entry point for eigenvalues of ∇²L (or of the Gauss–Newton matrix 2JᵀJ): dense, Gram (2·eig(JJᵀ), on M),
/// Lanczos (k extreme ones) or SLQ (the density). Every route, check and rule lives here; callers render the result.
/// </summary>
/// <remarks>
/// <para>
/// At a point of M with a = 2, ∇²L = 2JᵀJ + R with R = 2Σ H_k∇²f_k small. rank JᵀJ = rank J ≤ ℓd, so 2JᵀJ has n − rank J ≥
/// n − ℓd eigenvalues exactly 0, and by Weyl's inequality the same number of eigenvalues of ∇²L lie within ‖R‖₂ of 0 (Cooper,
/// Proposition 2.3). Single-vector Lanczos finds each distinct eigenvalue once (no multiplicities; see <see cref="Lanczos"/>),
/// so asked for the k smallest eigenvalues there it returns one value near 0 and then Ritz values that are not eigenvalues.
/// The k smallest eigenvalues at such a point are therefore answered from rank J: k zeros, each within ±(‖R‖₂ +
/// 2σ_{rank+1}²), with multiplicity n − rank J, when k ≤ n − rank J, the rank is decided and the gap to 2σ_rank² − ‖R‖₂ is
/// resolved; ‖R‖₂ is estimated by Lanczos on <see cref="ResidualTermOperator"/> (see <see cref="ZeroEigenvalues"/>).
/// </para>
/// <para>
/// A Lanczos value whose explicit residual fails the test is returned with Converged = false: it is a Ritz value with an
/// eigenvalue within its residual, not an eigenvalue.
/// </para>
/// </remarks>
public static class HessianSpectrum
{
    /// <summary>
    /// Lanczos steps for the estimate of ‖R‖₂: the largest-magnitude Ritz value converges first, typically in a few tens
    /// of steps (Golub &amp; Van Loan §10.1.5, Kaniel–Paige theory); 60 caps the cost at 60 Hessian and 60 Gauss–Newton products.
    /// </summary>
    public const int ResidualTermSteps = 60;

    /// <summary>Relative residual to which ‖R‖₂ is estimated: two digits are all a bound used as a threshold needs.</summary>
    public const double ResidualTermTolerance = 1e-2;

    /// <summary>The eigenvalues of the operator <see cref="SpectrumOptions.Operator"/> of <paramref name="map"/>'s loss at its current point.</summary>
    /// <param name="map">The model and data.</param>
    /// <param name="options">Method, operator, k, end and iteration budget; default <see cref="SpectrumOptions"/>'s.</param>
    /// <param name="limits">
    /// The memory budget of every dense object and Krylov basis; the token; the stages of the dense route reported (the
    /// columns as they are built, then the eigen-solve).
    /// </param>
    /// <exception cref="MemoryBudgetExceededException">A dense matrix, Gram matrix or Krylov basis would exceed the budget.</exception>
    /// <exception cref="ArgumentException">An option is out of range, or Gram is asked for with a loss other than the squared one.</exception>
    /// <exception cref="LandscapeInputException">k exceeds n, the number of eigenvalues the operator has.</exception>
    public static SpectrumResult Compute(IResidualProblem map, SpectrumOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        options ??= new SpectrumOptions();
        limits ??= RunLimits.Default;
        RequireK(options, map.ParameterCount);
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var op = CurvatureOperators.Create(map, options.Operator);
        var result = options.Method switch
        {
            SpectrumMethod.Dense => Dense(op, options, limits),
            SpectrumMethod.Gram => Gram(map, options, limits),
            SpectrumMethod.Lanczos => options.Which == SpectrumEnd.Smallest ? Smallest(map, op, options, limits) : LanczosRun(op, options, limits, null),
            SpectrumMethod.Slq => Slq(op, options, limits),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Method, "unknown spectrum method"),
        };
        return result with { Seconds = watch.Elapsed.TotalSeconds };
    }

    /// <summary>
    /// 1 ≤ k ≤ n: an n × n operator has n eigenvalues, so a larger k is refused (one line naming n) rather than silently
    /// answered with n values.
    /// </summary>
    private static void RequireK(SpectrumOptions options, long n)
    {
        if (options.K < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.K, "K must be at least 1");
        }
        if (options.K > n)
        {
            throw new LandscapeInputException(string.Create(CultureInfo.InvariantCulture,
                $"k = {options.K} eigenvalues asked for, but {CurvatureOperators.Name(options.Operator)} is n × n with n = {n}: it has at most {n}"));
        }
    }

    private static SpectrumResult Dense(LinearOperator op, SpectrumOptions options, RunLimits limits)
    {
        var dense = DenseSpectrum.Compute(op, limits: limits);
        var values = dense.Select(options.Which, options.K);
        long n = op.Columns;
        return new SpectrumResult(SpectrumMethod.Dense, options.Operator, CurvatureOperators.Name(options.Operator), options.Which, values, null,
            Enumerable.Repeat(true, values.Count).ToArray(), dense.Applications, SolverStatus.Converged,
            string.Create(CultureInfo.InvariantCulture, $"all {n} eigenvalues of the dense matrix (n products, LAPACK eigh); asymmetry before symmetrising {dense.Asymmetry:G3}"))
        {
            Asymmetry = dense.Asymmetry,
            AllEigenvalues = dense.Eigenvalues.Reverse().ToArray(),
        };
    }

    private static SpectrumResult Gram(IResidualProblem map, SpectrumOptions options, RunLimits limits)
    {
        map.LossFunction.RequireResidualSum("the gram method (2·eig(JJᵀ), the spectrum of ∇²L on M)");
        ComputePrecision.RequireFloat64(map, "the gram method (2·eig(JJᵀ), the spectrum of ∇²L on M)");
        if (map.Exponent != 2.0)
        {
            throw new LandscapeInputException("the gram method needs the squared loss (a = 2), where the Gauss–Newton matrix is 2JᵀJ and ∇²L = 2JᵀJ on M");
        }
        int m = map.Constraints, n = map.ParameterCount;
        // σ(J) by the library's one route rule (JacobianFactorization: the SVD of J when it fits, else eig(JJᵀ)).
        var route = JacobianFactorization.ChooseRoute(map, limits);
        limits.Require($"σ(J) for the gram spectrum (J is {m} × {n})", JacobianFactorization.RequiredBytes(map, route, limits),
            "use Lanczos (k extreme eigenvalues) or SLQ (the spectral density), or a subset of the data", BudgetRemedy.Method | BudgetRemedy.Rows);
        var manifold = OnManifoldTest.At(map, options.OnManifoldTolerance);
        using var scope = NewDisposeScope();
        // The nonzero eigenvalues of 2JᵀJ are 2σᵢ(J)², the other n − ℓd are 0 (eig(2JᵀJ) = eig(2JJᵀ) ∪ zeros). With ℓd > n the
        // Gram route's ℓd − n smallest values are the rounding of zeros that 2JᵀJ does not have: only the n largest are kept.
        RankDecision rank;
        using (var factors = JacobianFactorization.Factor(map, route, limits.WithoutProgress()))
        {
            rank = factors.Rank;
        }
        var all = rank.SingularValues.Select(s => 2 * s * s).Concat(Enumerable.Repeat(0.0, Math.Max(0, n - m))).Take(n).ToArray();
        var values = SpectrumOrder.Select(all, options.Which, options.K).Select(i => all[i]).ToArray();
        bool hessian = options.Operator == CurvatureKind.Hessian;
        string where = string.Create(CultureInfo.InvariantCulture, $"max|H| = {manifold.MaxAbsResidual:G3}");
        string note = !hessian
            ? $"the Gauss–Newton matrix 2JᵀJ: eigenvalues 2·eig(JJᵀ) and n − ℓd zeros, exact at any point ({where})"
            : manifold.Holds
                ? $"on M ({where} ≤ {manifold.Tolerance.ToString("G3", CultureInfo.InvariantCulture)}): ∇²L = 2JᵀJ, eigenvalues 2·eig(JJᵀ) and n − ℓd zeros; valid on M only"
                : $"NOT on M ({where} > {manifold.Tolerance.ToString("G3", CultureInfo.InvariantCulture)}): these are the eigenvalues of the Gauss-Newton matrix 2JᵀJ, not of ∇²L; use the dense or lanczos method for ∇²L";
        return new SpectrumResult(SpectrumMethod.Gram, options.Operator, "gauss-newton 2JᵀJ (gram)", options.Which, values, null,
            Enumerable.Repeat(true, values.Length).ToArray(), 0, SolverStatus.Converged, note)
        {
            Manifold = manifold,
            Inertia = hessian ? InertiaRule.FromJacobian(rank, n, squaredLoss: true, manifold.Holds) : null,
        };
    }

    private static SpectrumResult LanczosRun(LinearOperator op, SpectrumOptions options, RunLimits limits, string? prefix, long extraProducts = 0, OnManifoldTest? manifold = null)
    {
        if (options.Which == SpectrumEnd.Smallest)
        {
            return ThickRestartRun(op, options, limits, prefix, extraProducts, manifold);
        }
        var lanczosOptions = new LanczosOptions(options.K, options.Which, options.MaxIterations, options.Tolerance, options.Seed, VerifyResiduals: true);
        var lanczos = Lanczos.Eigenpairs(op, lanczosOptions, limits);
        lanczos.Eigenvectors.Dispose();
        string note = string.Create(CultureInfo.InvariantCulture,
            $"{prefix}Lanczos with full re-orthogonalisation, {lanczos.Iterations} steps, {lanczos.Breakdowns} breakdowns; residuals ‖Hv − λv‖ computed explicitly (k more products); converged when ≤ {options.Tolerance:G3}·max|λ|; single-vector Lanczos finds each distinct eigenvalue once (no multiplicities)");
        return LanczosSpectrum(options, note, lanczos.Eigenvalues, lanczos.ResidualNorms, lanczos.Converged, lanczos.Applications + extraProducts, lanczos.Status,
            lanczos.Iterations, manifold);
    }

    /// <summary>
    /// The k smallest eigenvalues by <see cref="ThickRestartLanczos"/>: near 0 a trained Hessian has many close eigenvalues,
    /// which plain Lanczos with a basis of min(n, max(100, 10k)) vectors does not converge (issue 11); the bounded basis with
    /// restarts spends the same products on them. <see cref="SpectrumOptions.MaxIterations"/> is its budget of products.
    /// </summary>
    private static SpectrumResult ThickRestartRun(LinearOperator op, SpectrumOptions options, RunLimits limits, string? prefix, long extraProducts, OnManifoldTest? manifold)
    {
        int k = (int)Math.Min(options.K, op.Columns);
        var run = ThickRestartLanczos.Eigenpairs(op, new ThickRestartOptions(k, options.Which, MaxIterations: options.MaxIterations,
            Tolerance: options.Tolerance, Seed: options.Seed), limits);
        run.Eigenvectors.Dispose();
        string note = string.Create(CultureInfo.InvariantCulture,
            $"{prefix}thick-restart Lanczos (Wu & Simon 2000), basis of {run.BasisSize} vectors, {run.Restarts} restarts, {run.Steps} steps, {run.Breakdowns} breakdowns; residuals ‖Hv − λv‖ computed explicitly (k more products); converged when ≤ {options.Tolerance:G3}·max|θ| = {options.Tolerance * run.NormEstimate:G3}");
        return LanczosSpectrum(options, note, run.Eigenvalues, run.ResidualNorms, run.Converged, run.Applications + extraProducts, run.Status, run.Steps, manifold);
    }

    /// <summary>The result of a Lanczos run (plain or thick-restart), its note saying how many values did not converge.</summary>
    private static SpectrumResult LanczosSpectrum(SpectrumOptions options, string note, IReadOnlyList<double> eigenvalues, IReadOnlyList<double> residuals,
        IReadOnlyList<bool> converged, long products, SolverStatus status, int iterations, OnManifoldTest? manifold)
    {
        int unconverged = converged.Count(c => !c);
        note += unconverged > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {unconverged} of {eigenvalues.Count} values NOT converged: Ritz values with an eigenvalue within their residual, not eigenvalues") : "";
        return new SpectrumResult(SpectrumMethod.Lanczos, options.Operator, CurvatureOperators.Name(options.Operator), options.Which, eigenvalues,
            residuals, converged, products, status, note)
        {
            Iterations = iterations,
            Manifold = manifold,
        };
    }

    /// <summary>
    /// The k smallest eigenvalues: zeros with multiplicity from rank J where the maths says so (see the remarks of the class),
    /// else plain Lanczos with a note saying why.
    /// </summary>
    private static SpectrumResult Smallest(IResidualProblem map, LinearOperator op, SpectrumOptions options, RunLimits limits)
    {
        int n = map.ParameterCount, m = map.Constraints;
        bool gaussNewton = options.Operator == CurvatureKind.GaussNewton;
        if (map.Exponent != 2.0)
        {
            return LanczosRun(op, options, limits, null);
        }
        OnManifoldTest? manifold = null;
        if (!gaussNewton)
        {
            manifold = OnManifoldTest.At(map, options.OnManifoldTolerance);
            if (!manifold.Holds)
            {
                return LanczosRun(op, options, limits, null, manifold: manifold);
            }
        }
        RankDecision rank;
        using (var factorization = JacobianFactorization.At(map, limits: limits.WithoutProgress()))
        {
            rank = RankDecision.FromSingularValues(factorization.Sigma, m, factorization.Tolerance, "σ(J) from the factorisation of J");
        }
        int multiplicity = n - rank.Rank;
        string F(double v) => v.ToString("G3", CultureInfo.InvariantCulture);
        if (!rank.Decided || options.K > multiplicity)
        {
            string why = !rank.Decided
                ? $"the rank of J is not decided (tolerance {F(rank.Tolerance)}), so the multiplicity of the zero eigenvalue is unknown; "
                : $"k = {options.K} exceeds the n − rank J = {multiplicity} zero eigenvalues, which Lanczos finds once; ";
            return LanczosRun(op, options, limits, why, manifold: manifold);
        }
        double residualTerm = 0;
        int steps = 0;
        long products = 0;
        if (!gaussNewton)
        {
            var residualOp = new ResidualTermOperator(map);
            var estimate = Lanczos.Eigenpairs(residualOp, new LanczosOptions(K: 1, Which: SpectrumEnd.LargestMagnitude, MaxIterations: (int)Math.Min(n, ResidualTermSteps),
                Tolerance: ResidualTermTolerance, Seed: options.Seed, VerifyResiduals: true), limits);
            estimate.Eigenvectors.Dispose();
            // |θ| + ρ: θ a Ritz value of R (inside its spectrum), ρ its residual.
            // No value (a breakdown before the first step) or a NaN is no estimate: NaN fails the gap test below, and plain Lanczos answers.
            residualTerm = estimate.Eigenvalues.Count > 0 && estimate.Status != SolverStatus.Breakdown ? Math.Abs(estimate.Eigenvalues[0]) + estimate.ResidualNorms[0] : double.NaN;
            steps = estimate.Iterations;
            products = residualOp.Hessian.Applications;
        }
        // The zeros of 2JᵀJ are exact; singular values dropped as zero (≤ the rank tolerance) add at most 2σ_{rank+1}².
        double dropped = Math.Max(rank.SigmaBelow, rank.Resolution);
        double bound = residualTerm + (2 * dropped * dropped);
        double lowest = rank.Rank > 0 ? (2 * rank.SigmaAbove * rank.SigmaAbove) - residualTerm : double.PositiveInfinity;
        if (!(lowest >= RankDecision.DecisionMargin * bound))
        {
            return LanczosRun(op, options, limits, $"the gap between the zero eigenvalues (within ±{F(bound)}) and the rest (≥ {F(lowest)}) is not resolved; ", products, manifold);
        }
        var zeros = new ZeroEigenvalues(multiplicity, bound, residualTerm, steps, rank, lowest);
        string source = gaussNewton
            ? $"2JᵀJ has n − rank J = {multiplicity} zero eigenvalues exactly (rank J = {rank.Rank} ≤ ℓd = {m}); each within ±{F(bound)} = 2·max(σ_rank+1, resolution)²"
            : $"on M (max|H| = {F(manifold!.MaxAbsResidual)} ≤ {F(manifold.Tolerance)}), ∇²L = 2JᵀJ + R: 2JᵀJ has n − rank J = {multiplicity} zero eigenvalues (rank J = {rank.Rank} ≤ ℓd = {m}), " +
              $"so by Weyl {multiplicity} eigenvalues of ∇²L lie within ±{F(bound)} of 0, where ‖R‖₂ ≈ {F(residualTerm)} is estimated by {steps} Lanczos steps on R = ∇²L − 2JᵀJ " +
              $"(|θ| + ρ of its largest-magnitude Ritz pair: an estimate, not a guaranteed bound) and 2σ_rank+1² adds the singular values dropped as zero";
        string note = $"zero within ±{F(bound)}, multiplicity {multiplicity} from rank J ≤ ℓd: {source}; every other eigenvalue is ≥ {F(lowest)}. " +
            "Single-vector Lanczos would find the zero eigenvalue once (no multiplicities), so the multiplicity comes from rank J";
        var values = Enumerable.Repeat(0.0, options.K).ToArray();
        return new SpectrumResult(SpectrumMethod.Lanczos, options.Operator, CurvatureOperators.Name(options.Operator), options.Which, values, null,
            Enumerable.Repeat(true, values.Length).ToArray(), products, SolverStatus.Converged, note)
        {
            Iterations = steps,
            Manifold = manifold,
            Zeros = zeros,
        };
    }

    private static SpectrumResult Slq(LinearOperator op, SpectrumOptions options, RunLimits limits)
    {
        var slqOptions = (options.Slq ?? new SlqOptions()) with { Seed = options.Seed };
        var slq = StochasticLanczosQuadrature.Estimate(op, slqOptions, limits);
        string note = string.Create(CultureInfo.InvariantCulture,
            $"stochastic Lanczos quadrature: {slqOptions.ProbeCount} probes × {Math.Min(op.Columns, slqOptions.Steps)} steps, Gaussian broadening σ² = {slqOptions.Sigma2:G3} on [−1, 1] (σ = {slq.Sigma:G3}); defaults of Ghorbani, Krishnan & Xiao 2019 and PyHessian");
        return new SpectrumResult(SpectrumMethod.Slq, options.Operator, CurvatureOperators.Name(options.Operator), options.Which, [], null, [], slq.Applications, slq.Status, note)
        {
            Slq = slq,
            SlqOptions = slqOptions,
        };
    }
}
