namespace LossLandscape.Tests;

/// <summary>
/// Every tolerance of the tests, named; each comment says where the number comes from. ε = 2.2e−16 is the float64
/// machine epsilon. A test states its bound through one of these, never as a literal: a reader sees why the bound is
/// what it is, and a change to it is a change here, visible as such.
/// </summary>
internal static class Tolerances
{
    // ── Exact computations in float64 ────────────────────────────────────────────────────────────────────────────

    /// <summary>Two exact float64 computations of the same quantity in different operation orders: a few thousand ε (ε ≈ 2.2e−16).</summary>
    public const double ExactAgreement = 1e-12;

    /// <summary>A closed form against an independent evaluation of the same formula: a few ε relative.</summary>
    public const double ClosedForm = 1e-14;

    /// <summary>
    /// The same formula through the same floating-point operations (e.g. tanh(x) and rectified-tanh at x &gt; 0): equal up to
    /// one rounding of a value below 1, whose unit in the last place is at most 1.1e−16.
    /// </summary>
    public const double SameOperations = 1e-16;

    /// <summary>
    /// The residual Hₖ from the residual map against f(xᵢ) − yᵢ from the network's forward pass: the same products in the
    /// same order, values of order 1, so a few ε.
    /// </summary>
    public const double SameResidual = 1e-15;

    /// <summary>
    /// A <see cref="Models.SequentialNetwork"/> against <c>torch.nn.Sequential</c> with the same weights: the same torch kernels
    /// (conv2d, pooling, linear) and batch norm by torch's own CPU formula x·α + (β − μα), but a few more roundings on the way
    /// (views of p, the activations' own formulas): outputs of order 1 through a handful of layers, a few hundred ε relative.
    /// </summary>
    public const double SameNetworkInTorch = 1e-13;

    /// <summary>
    /// The input scaling folded into the model against applied to the data first: the subtraction and division happen in
    /// either order, outputs of order 10, so a few hundred ε absolute.
    /// </summary>
    public const double ScalingFolded = 1e-13;

    /// <summary>
    /// A loss that is exactly zero in exact arithmetic, evaluated in float64 (ℓd residuals of rounding size, squared and
    /// summed: ℓd·(10ε)² ≈ 1e−28 for ℓd ≈ 20).
    /// </summary>
    public const double ExactZeroLoss = 1e-28;

    // ── Activations (smooLU and friends) ─────────────────────────────────────────────────────────────────────────

    /// <summary>smooLU at x = 0.1 is 4.54e−6 (e^{−10}/10): 1e−20 absolute is 2e−15 relative, the rounding of exp and one product.</summary>
    public const double SmooLUValueAtTenth = 1e-20;

    /// <summary>smooLU′(0.1) = 11·e^{−10} ≈ 5.0e−4: 1e−18 absolute is 2e−15 relative.</summary>
    public const double SmooLUFirstDerivativeAtTenth = 1e-18;

    /// <summary>smooLU″(0.1) = 1000·e^{−10} ≈ 4.5e−2: 1e−15 absolute is 2e−14 relative (1/x³ = 1000 amplifies the rounding of x).</summary>
    public const double SmooLUSecondDerivativeAtTenth = 1e-15;

    /// <summary>Autograd's value against the closed form at |x| ≤ 4 (values of order 1): a few tens of ε.</summary>
    public const double AutogradValue = 1e-14;

    /// <summary>Autograd's first derivative against the closed form: one backward pass, about ten times the value's rounding.</summary>
    public const double AutogradFirstDerivative = 1e-13;

    /// <summary>Autograd's second derivative (double backward) against the closed form: ten times again.</summary>
    public const double AutogradSecondDerivative = 1e-12;

    // ── Finite differences ───────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Central differences with step h = 1e−6 on values of order 1: truncation h²·|f‴|/6 ≈ 1e−13 plus
    /// rounding ε·|f|/h ≈ 2e−10, so 1e−7 relative to the largest entry leaves a wide margin yet catches any wrong entry.
    /// </summary>
    public const double FiniteDifference = 1e-7;

    /// <summary>The central-difference step.</summary>
    public const double FiniteDifferenceStep = 1e-6;

    /// <summary>
    /// Singular values of J by two routes (or a route and LAPACK's svdvals) agree to this multiple of the route's stated
    /// resolution (<see cref="Geometry.RankDecision.Resolution"/>: √max(ℓd, n)·ε·σmax for the SVD, √(ℓd·ε)·σmax for
    /// √eig(JJᵀ)); the resolution is itself a backward-error bound up to a modest constant, which 10 covers.
    /// </summary>
    public const double ResolutionMultiple = 10;

    /// <summary>
    /// J⁺r and Πu against the dense reference (torch linalg.pinv): relative error at most this multiple of ε·κ on the SVD
    /// route and of ε·κ² on the Gram route, κ = σmax/σ_rank — the forward-error bounds of a backward-stable
    /// least-squares solve and of the normal equations (Higham, Accuracy and Stability of Numerical Algorithms, 2002,
    /// §20.1 and §20.4). 1e3 covers the bounds' dimension-dependent constants at the table's sizes (n ≤ 50).
    /// </summary>
    public const double SolveErrorMultiple = 1e3;

    // ── Curvature operators and estimators ───────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Two exact float64 evaluations of the same second derivatives by different autograd graphs (or summation orders):
    /// relative to the largest entry, a few thousand ε (ε ≈ 2.2e−16), as <see cref="ExactAgreement"/>, with a
    /// factor 10 for the two reverse passes stacked.
    /// </summary>
    public const double SecondOrderAgreement = 1e-11;

    /// <summary>
    /// Central differences of the exact gradient with step h = 1e−6: truncation h²|∇⁴L|/6 ≈ 1e−13 plus rounding
    /// ε·|∇L|/h ≈ 1e−10 per entry, relative to the largest entry of ∇²L; 1e−6 leaves a wide margin yet catches a wrong entry.
    /// </summary>
    public const double GradientDifferences = 1e-6;

    /// <summary>
    /// Relative eigenvalue error of a Ritz value whose relative residual is ≤ r: |θ − λ| ≤ ‖r‖ (Weyl / Bauer-Fike for symmetric A),
    /// and ≤ ‖r‖²/gap once separated; the tests ask 1e−8 residuals, so 1e−8 relative to |λ|max.
    /// </summary>
    public const double RitzValue = 1e-8;

    /// <summary>Statistical tests: |estimate − truth| ≤ 4 standard errors (two-sided probability of failure ≈ 6e−5 for a normal estimate).</summary>
    public const double StandardErrors = 4.0;

    /// <summary>
    /// Lanczos stops when ‖Hv − λv‖ ≤ 1e−6·max|λ| (the CLI's default); an eigenvalue error is at most its residual, so
    /// Lanczos and dense eigenvalues agree to 1e−6 relative to the spectral scale max|λ|.
    /// </summary>
    public const double LanczosAgreement = 1e-6;

    /// <summary>The relative residual Lanczos is asked for on the matrices of known spectrum (and checked against, below).</summary>
    public const double LanczosKnownSpectrum = 1e-10;

    /// <summary>The relative residual Lanczos is asked for on the networks' Hessians (and checked against).</summary>
    public const double LanczosNetwork = 1e-9;

    /// <summary>
    /// A residual ‖Av − θv‖ recomputed from the returned vectors (VerifyResiduals) against the bound the recurrence promised:
    /// the two differ by the rounding of one product, far below 1 %.
    /// </summary>
    public const double ResidualRecomputation = 1.01;

    /// <summary>
    /// max|AV − VΛ| for Lanczos pairs asked for 1e−10 relative residuals on a spectrum of scale 10 (1e−9 absolute):
    /// 1e−8 leaves a factor 10.
    /// </summary>
    public const double EigenpairResidual = 1e-8;

    /// <summary>
    /// SLQ: each probe's quadrature weights sum to 1 (the zeroth moment), up to the rounding of the tridiagonal eigensolver:
    /// equal to 12 decimal places.
    /// </summary>
    public const int QuadratureWeightDigits = 12;

    /// <summary>SLQ's Trace(f) = n·(moment of f) on n = 120: the same numbers scaled by n, equal to 9 decimal places on values of order 10³.</summary>
    public const int MomentTraceDigits = 9;

    /// <summary>
    /// The SLQ density is a mixture of Gaussians of total weight 1 evaluated on a grid with a margin of about 6σ on each side
    /// (SlqOptions.GridMargin); the trapezoid rule on 10 000 points then integrates it to 1 within 1e−3.
    /// </summary>
    public const double DensityMass = 1e-3;

    /// <summary>The same integral as <see cref="DensityMass"/>, as the decimal places xunit's precision overload compares.</summary>
    public const int DensityMassDigits = 3;

    /// <summary>
    /// The sample standard error of an SLQ moment against theory, 40 probes: the ratio of a sample standard deviation of 40
    /// draws to the true one is within [0.4, 2.5] far beyond 4σ for the heavy-tailed quadratic forms here.
    /// </summary>
    public const double StandardErrorRatioLow = 0.4, StandardErrorRatioHigh = 2.5;

    /// <summary>Hutchinson's sample variance at N = 400 probes against Var[zᵀAz]: within 25 % (the relative spread of a variance estimate is about √(2/N) ≈ 7 %).</summary>
    public const double SampleVarianceRatioLow = 0.75, SampleVarianceRatioHigh = 1.25;

    /// <summary>Hutchinson's standard error from 25 to 400 probes shrinks by √(400/25) = 4 in theory; at most half of it is asked.</summary>
    public const double StandardErrorShrink = 0.5;

    /// <summary>
    /// Hutch++ with a sketch that spans ℝⁿ is exact up to rounding: its standard error is 0, so the bound needs a rounding
    /// term, 1e−9 of the trace (the QR and products of a 200 × 200 matrix of entries up to 100).
    /// </summary>
    public const double TraceRounding = 1e-9;

    /// <summary>Hutch++ with m/3 ≥ n on a 4 × 4 matrix is exact: the trace 4.5 to 10 decimal places.</summary>
    public const int ExactTraceDigits = 10;

    /// <summary>The relative residual power iteration is asked for (its residual rule), and Lanczos, for comparison, at the same absolute residual.</summary>
    public const double PowerIterationTolerance = 1e-8;

    /// <summary>Power iteration's residuals and eigenvalue errors: <see cref="PowerIterationTolerance"/> relative to the top eigenvalue 10, i.e. 1e−7 absolute.</summary>
    public const double PowerIterationResidual = 1e-7;

    /// <summary>PyHessian's rule (relative change below 1e−3) stops early: its top eigenvalue is right to one decimal place only.</summary>
    public const int PyHessianRuleDigits = 1;

    /// <summary>An eigenvalue counts as zero below 1e−10 of the top one: a dense eigensolver resolves to n·ε·|λ|max ≈ 1e−14 here, so 1e−10 is far above rounding and far below any nonzero eigenvalue of these small cases.</summary>
    public const double ZeroEigenvalue = 1e-10;

    // ── The paper's claims ───────────────────────────────────────────────────────────────────────────────────────

    /// <summary>The goal of Lemma 3.3's construction: max|f(xᵢ) − yᵢ| ≤ 1e−10·max(1, max|y|) (ConstructionOptions' goal).</summary>
    public const double ConstructionGoal = 1e-10;

    /// <summary>
    /// On digits with h = d the construction's residual sits at the float64 cancellation floor ε·C (C the amplification):
    /// within this factor of it.
    /// </summary>
    public const double CancellationFloorFactor = 4;

    /// <summary>On digits with h = d: the residual is below 1e−8·max(1, max|y|) even though the goal 1e−10 is out of reach (C ≥ 2.6e6).</summary>
    public const double CancellationFloor = 1e-8;

    /// <summary>The dense eigenvalues of ∇²L and 2σᵢ(J)² agree to 10 × the dense method's own resolution (its tolerance).</summary>
    public const double DenseResolutionMultiple = 10;

    /// <summary>
    /// Halving a step along the tangent to M divides the residual by 4 (second order), along the normal by 2 (first order);
    /// the next-order terms move the ratios by O(step) ≈ 1 % at steps of 1e−2, and the windows allow ±12.5 % and ±10 %.
    /// </summary>
    public const double TangentRatioLow = 3.5, TangentRatioHigh = 4.5, NormalRatioLow = 1.8, NormalRatioHigh = 2.2;

    /// <summary>The retraction tolerance the walk on M is asked for, and that every step is checked against.</summary>
    public const double WalkRetraction = 1e-11;

    /// <summary>Quadratic convergence of Gauss–Newton: e₂ ≤ C·e₁² with C estimated from the first step as e₁/e₀², allowed 10 × that.</summary>
    public const double QuadraticConstantSlack = 10;

    /// <summary>
    /// At a point of M the slice's loss is O(α⁴) along the tangent and O(α²) along the normal; at α ≤ 0.1 the ratio of the
    /// maxima is O(α²) = 1e−2.
    /// </summary>
    public const double TangentFlatness = 1e-2;

    /// <summary>Along the normal L(α)/α² is constant up to O(α): within a factor 1.25 either way at α ≤ 0.1.</summary>
    public const double ParabolaRatioLow = 0.8, ParabolaRatioHigh = 1.25;

    /// <summary>The slice's centre loss is the map's loss at the same point, ≈ 1e−28 on M: absolute 1e−20 is far below any loss off M.</summary>
    public const double CenterLoss = 1e-20;

    // ── Paths between minima ─────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// A straight line between two minima "has a barrier" when its barrier exceeds 1e−6: far above the endpoints' losses
    /// (below 1e−20, <see cref="ZeroLoss"/>) and the rounding of L along the line (ε·L), so the comparison below means something.
    /// </summary>
    public const double StraightLineBarrier = 1e-6;

    /// <summary>
    /// A trained path (Bézier, polygonal chain, AutoNEB) must end with at most half the straight line's barrier: the issue asks
    /// for "lower"; half is a margin no noise of a seeded run explains (with the small test budget the three end near 5 % of it).
    /// </summary>
    public const double TrainedBarrierFraction = 0.5;

    // ── Training ─────────────────────────────────────────────────────────────────────────────────────────────────

    /// <summary>Acceptance criterion of issue 5: Gauss–Newton reaches L below this from a random initialization when n &gt; ℓd.</summary>
    public const double ZeroLoss = 1e-20;

    /// <summary>
    /// L-BFGS on a linear least-squares problem (a quadratic) against the normal-equation minimum: the relative gap in L
    /// after convergence is limited by the rounding of L itself, ε·κ-sized; 1e−9 leaves a wide margin.
    /// </summary>
    public const double QuadraticMinimum = 1e-9;

    /// <summary>Every optimizer at least halves the loss on the small problems of the tests within its budget.</summary>
    public const double TrainingProgress = 0.5;

    /// <summary>With n &lt; ℓd there is generically no zero of H: Gauss–Newton stalls at a loss far above rounding, and 1e−6 is far above it.</summary>
    public const double StalledLoss = 1e-6;

    /// <summary>
    /// The loss of a model written by <c>train</c> and read back, against the best loss it reported: the parameters round-trip
    /// exactly, the data are deduplicated and reloaded; 1e−10 relative allows another summation order with a wide margin.
    /// </summary>
    public const double ReloadedLoss = 1e-10;

    /// <summary>
    /// At a point of M the spectrum of ∇²L is that of 2JᵀJ up to ‖R‖₂ (Weyl; R ∝ max|H| ≤ 1e−12) and rounding: the dense
    /// eigenvalues carry n·ε·‖∇²L‖ ≈ 300·2.2e−16 ≈ 7e−14 relative, the Gram ones ℓd·ε·λmax ≈ 2e−14; 1e−10 relative to the
    /// largest eigenvalue leaves three orders of margin and still catches a wrong factor or a missing eigenvalue.
    /// </summary>
    public const double GramAgreesWithDense = 1e-10;

    /// <summary>
    /// The Lanczos tolerance of the convergence tests that compare with the spectrum command's default 1e−6 (<c>SpectrumOptions.Tolerance</c>).
    /// </summary>
    public const double LanczosTolerance = 1e-6;

    /// <summary>
    /// A Lanczos budget too small to converge anything: 6 steps on an operator of n ≥ 67 with a bulk of distinct eigenvalues
    /// leave residuals of order ‖A‖/10 (Kaniel–Paige: the error of the extreme Ritz value decays like a Chebyshev polynomial of degree 6).
    /// </summary>
    public const int TooFewLanczosSteps = 6;

    // ── Paths between minima: unit permutations and weight matching ──────────────────────────────────────────────

    /// <summary>
    /// A network against the same network with its hidden units permuted (<c>UnitPermutation</c>): the same products, summed
    /// in another order over h ≤ 16 terms of order 1, so a few ε of the largest output; relative to max(1, max|f|).
    /// </summary>
    public const double PermutedOutputs = 1e-14;

    /// <summary>
    /// A sequential network (convolutions, batch norm, pools, flatten) against the same network with its channels permuted
    /// (<c>UnitPermutation</c>): again the same products summed in another order, over in·k² terms per output of a
    /// convolution and C·H·W after a flatten; 1e−12 relative to max(1, max|f|), the bound.
    /// </summary>
    public const double PermutedSequentialOutputs = 1e-12;

    /// <summary>
    /// Weight matching of π(A) against A: the recovered π⁻¹ makes π⁻¹(π(A)) a copy of A, so equality is exact; 1e−12 (the
    /// issue's bound) only allows for an alignment that is right up to rounding, and still catches a single swapped unit.
    /// </summary>
    public const double RecoveredAlignment = 1e-12;
    // ── Paths between minima ─────────────────────────────────────────────────────────────────────────────────────

    /// <summary>The on-M tolerance of a manifold path: max|H| ≤ 1e−10·max(1, max|y|), the tolerance of <c>certify</c> (issue 10, §2).</summary>
    public const double OnManifold = 1e-10;

    /// <summary>
    /// A certificate value recomputed by a second forward pass (or factorization) at the same point: the same operations on
    /// the same numbers, so equal up to the nondeterminism of threaded BLAS reductions, a few ε relative; 1e−12 relative.
    /// </summary>
    public const double RecomputedValue = 1e-12;

    /// <summary>
    /// Three Levenberg–Marquardt steps by the Gram route against the SVD route from the same point: the same step
    /// Jᵀ(JJᵀ + μI)⁻¹H, but the Gram route's eigenvalues carry an error ℓd·ε·λmax and its solves one ∝ κ(J)²
    /// (JacobianFactorization's remarks); at κ(J) ≲ 10³ on this 12-point case that is ≲ 1e−10 of the parameters' scale, and
    /// 1e−8 leaves two orders of margin while a wrong step (μ or the sign) moves the point by O(1).
    /// </summary>
    public const double GramRouteSteps = 1e-8;

    // ── Thick-restart Lanczos ────────────────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// The relative residual thick-restart Lanczos is asked for on the matrices of known spectrum: 1e−8·‖A‖, a hundred times
    /// stricter than issue 11's goal (1e−6), so the test shows headroom; an eigenvalue lies within its residual of θ.
    /// </summary>
    public const double ThickRestartKnownSpectrum = 1e-8;

    /// <summary>
    /// |θ_i − λ_i| against eigh, relative to ‖A‖, for converged pairs asked for <see cref="ThickRestartKnownSpectrum"/>: the
    /// residual bounds the distance to some eigenvalue; a factor 10 covers the rounding of eigh and of the recomputed residual.
    /// </summary>
    public const double ThickRestartAgreement = 1e-7;

    /// <summary>
    /// A product budget no method can converge 20 pairs in on the known spectrum: 30 applications, 10 Lanczos steps after the
    /// 20 reserved for verification — fewer steps than wanted pairs.
    /// </summary>
    public const int ThickRestartImpossibleBudget = 30;

    /// <summary>
    /// How close GramCholesky's aim comes to σmin/√2 and its σmax estimate to σmax on a 60 × 60 K: Lanczos with 60 steps on a
    /// 60 × 60 matrix converges its extreme Ritz values to near rounding, so 1e−6 is generous and still fails a target off by more.
    /// </summary>
    public const double GramCholeskyAim = 1e-6;

    /// <summary>
    /// The Cholesky and eigendecomposition Levenberg–Marquardt steps agree relatively to 1e−8: both solve the same full-rank
    /// system, the eigendecomposition's vectors carry √ε·κ-sized rounding at κ(J) ~ 10³ and Cholesky's ε·κ(K).
    /// </summary>
    public const double GramCholeskyStep = 1e-8;
    /// Four Gauss–Newton steps on iris with each step on a worker thread (a cancellable token) against the calling
    /// thread: the same arithmetic up to the order of libtorch's parallel reductions, which changes when other tests
    /// share its thread pool; a few units of rounding per step, grown by four steps' conditioning (measured differences
    /// were exactly 0 when run alone), relative to max(1, L).
    /// </summary>
    public const double SameStepsOnAnotherThread = 1e-9;
    /// The normal route's steps against the dense reference (JᵀJ + μI)⁻¹Jᵀr: the normal equations' relative error is
    /// ≲ c·ε·κ(J)² (Higham 2002, §20.4), here κ ≲ 10² on a 40-point, 13-parameter case, so ≲ 1e−11; 1e−8 leaves margin
    /// while a wrong μ, sign or dropped direction is an O(1) error.
    /// </summary>
    public const double NormalRouteSteps = 1e-8;
    // ── Curvature approximations (issue 23) ─────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// (A + λI)⁻¹v and log det(A + λI) from an approximation's structure (Kronecker or dense-block eigendecompositions, a
    /// diagonal) against torch.linalg's solve and slogdet on the dense matrix, with λ making κ(A + λI) ≲ 200: both are
    /// backward stable, so they agree to about κ·n·ε ≈ 200·80·2.2e−16 ≈ 4e−12 relative; 1e−10 leaves a margin, and a wrong
    /// factor, layout or eigenvalue is an O(1) error.
    /// </summary>
    public const double DampedInverse = 1e-10;

    /// <summary>
    /// KFAC's output factor from the Monte Carlo Fisher with M = 20000 draws per row against the exact one: the relative
    /// standard deviation of a mean of M draws is about 1/√M ≈ 0.007 (times a constant of order 1 for these factors); 5 % is
    /// beyond 6 of those, and a missing scale (√2, 1/d) is off by 40 % or more.
    /// </summary>
    public const double MonteCarloFisher = 0.05;

    // ── Data-parallel curvature on an Orleans cluster (issue 12) ─────────────────────────────────────────────────────

    /// <summary>
    /// Distributed against single-process sums (L, ∇L, Hv, Jv, Jᵀw, the Gram matrix, Lanczos' top 5), relative to the largest
    /// entry: issue 12 §3's bar. The shards run the same operations on fewer rows; only the order of the sum over samples
    /// differs, a few ulps per term.
    /// </summary>
    public const double DistributedAgreement = 1e-12;

    /// <summary>
    /// Eigenvalues of a multi-process run, one worker killed and restarted, against a run without failure: issue 12 §3's 1e-10.
    /// A retried product is recomputed on the same rows at the same point, so the two runs agree far closer than this.
    /// </summary>
    public const double DistributedRestartAgreement = 1e-10;

    /// <summary>
    /// Losses of distributed training against single-process training, step by step, relative: issue 12's 1e-10 for "same
    /// steps → same losses". Each step adds the sum-order difference (~1e-15 relative) of ∇L; a few gradient-descent steps
    /// at η ≤ 1/λmax do not amplify it by more than a small factor.
    /// </summary>
    public const double DistributedTrainingAgreement = 1e-10;
}
