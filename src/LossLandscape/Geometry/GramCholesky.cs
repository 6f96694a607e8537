using LossLandscape.Operators;
using LossLandscape.Problem;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// The Gram route for large ℓd without an eigendecomposition: K = JJᵀ (per layer, J never formed) factored by Cholesky.
/// It proves full row rank by a floating-point positive-definiteness test and solves the Levenberg–Marquardt systems
/// (K + μI)w = H, both in O(ℓd³/3) where a symmetric eigendecomposition costs about 9·ℓd³ with vectors (4/3·ℓd³ without).
/// </summary>
/// <remarks>
/// <para><b>The test.</b> If Cholesky runs to completion on a symmetric floating-point matrix A, the computed factor R
/// satisfies RᵀR = A + ΔA with |ΔA| ≤ γ_{m+1}|Rᵀ||R| entrywise (Higham, <i>Accuracy and Stability of Numerical Algorithms</i>,
/// 2nd ed., 2002, Theorem 10.3; γ_k = ku/(1 − ku), u = 2⁻⁵³). Since ‖|Rᵀ||R|‖₂ ≤ ‖R‖_F² = trace(A + ΔA) ≤ trace(A)/(1 − γ_{m+1}),
/// and RᵀR ⪰ 0, λmin(A) ≥ −γ_{m+1}/(1 − γ_{m+1})·trace(A): the idea of Rump, "Verification of positive definiteness",
/// BIT 46 (2006) 433–452, who runs the factorization on A − cI to prove A positive definite. Here A = fl(K̂ − tI) for a
/// shift t &gt; 0 (the subtraction on the diagonal errs by at most u·(max k̂ᵢᵢ + t)), and K̂ is K as computed from the
/// per-layer factors: every entry of K is Σ_layers (δᵢ·δⱼ)(aᵢ·aⱼ + 1), so |K̂ − K| ≤ γ_W·Σ_layers (|δ||δ|ᵀ) ⊙ (|a||a|ᵀ + 1) with
/// W the longest inner product plus the layers and the few operations around it; that matrix is positive semidefinite
/// (Schur product of Gram matrices) with the same diagonal as K, so its 2-norm is at most trace(K). Hence, when the
/// factorization of fl(K̂ − tI) succeeds,
/// <code>
/// λmin(K) ≥ t − c,   c = (γ_{m+1}/(1 − γ_{m+1}) + γ_W(1 + γ_W))·trace(K̂) + u·(max k̂ᵢᵢ + t),
/// </code>
/// and σmin(J) ≥ √(t − c). The bound c is doubled (<see cref="SafetyFactor"/>) for the rounding of its own arithmetic.
/// Like every route of the library, it certifies the Jacobian of the network as evaluated in float64 (the factors δ and a
/// as computed), not of an exact-arithmetic network.</para>
/// <para><b>The target.</b> A few Lanczos steps on K give θmin ≥ λmin(K) (a Ritz value lies inside the spectrum); the test
/// runs at t = s + c for s = θmin/2, then θmin/20, then the least s that still decides the rank against the tolerance of the
/// eigenvalue route, (10·τ)² (<see cref="RankDecision.DecisionMargin"/>): one Cholesky each, usually the first.</para>
/// </remarks>
public static class GramCholesky
{
    /// <summary>How the rank is proved on this route (the <see cref="RankDecision.Basis"/>).</summary>
    public const string Basis = "Cholesky of JJᵀ − tI (floating-point positive-definiteness test, Higham Thm 10.3 / Rump 2006)";

    /// <summary>
    /// ℓd above which the certificate and Gauss–Newton on the Gram route use Cholesky instead of a symmetric eigendecomposition:
    /// 3000. Measured here (2 cores, libtorch's LAPACK, `bench scale-probe 4000`): at ℓd = 4000 Cholesky took 1.3 s, eigvalsh
    /// 12.6 s and eigh 55 s, and they scale as ℓd³; at 3000 an eigh costs about 25 s per Gauss–Newton step.
    /// </summary>
    public const int EigenRouteLimit = 3000;

    /// <summary>The factor on the rounding bound c, for the rounding of the bound's own arithmetic (a bound, so only larger is safe).</summary>
    public const double SafetyFactor = 2.0;

    /// <summary>
    /// Lanczos steps on K for the estimate of λmax(K): 30, since the top of a Gram matrix converges in tens of steps; each step
    /// reads K once (about 80 ms at ℓd = 10,000, memory-bound), so the count matters.
    /// </summary>
    private const int EstimateSteps = 30;

    /// <summary>
    /// Lanczos steps on K⁻¹ (by the Cholesky factor) for the estimate of λmin(K) = 1/λmax(K⁻¹): 25, since the largest
    /// eigenvalues of K⁻¹ are usually well separated (the smallest of K are spread on a logarithmic scale); each step reads the
    /// factor twice, and an estimate within a factor 2 suffices (the test aims at half of it).
    /// </summary>
    private const int InverseSteps = 25;

    /// <summary>The fractions of θmin tried as the proven lower bound s, before the least s that decides the rank.</summary>
    private static readonly double[] TargetFractions = [0.5, 0.05];

    /// <summary>Whether <paramref name="map"/> with <paramref name="route"/> takes the Cholesky path (Gram route and ℓd above <see cref="EigenRouteLimit"/>).</summary>
    public static bool Applies(IResidualProblem map, JacobianRoute route)
    {
        ArgumentNullException.ThrowIfNull(map);
        return route == JacobianRoute.Gram && map.Constraints > EigenRouteLimit && GramMatrix.HasFactoredRoute(map);
    }

    /// <summary>The bytes one Levenberg–Marquardt step by <paramref name="route"/> holds: this route's where it applies, else the factorization's.</summary>
    public static long StepBytes(IResidualProblem map, JacobianRoute route) =>
        Applies(map, route) ? RequiredBytes(map) : JacobianFactorization.RequiredBytes(map, route);

    /// <summary>
    /// Bytes this route holds at once: building K (<see cref="GramMatrix.RequiredBytes"/>), then K, one shifted copy and its
    /// factor (the Lanczos estimates hold K, a copy and a basis of m-vectors before that).
    /// </summary>
    public static long RequiredBytes(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        long m = map.Constraints;
        return Math.Max(GramMatrix.RequiredBytes(map), checked(3 * MemoryBudget.DenseMatrixBytes(m, m)));
    }

    /// <summary>
    /// W of the remarks: the longest inner product in forming K from the per-layer factors (the widest layer input or output,
    /// plus the constant 1), plus one rounding per layer in the sum and three around each product.
    /// </summary>
    public static int FormingLength(Mlp mlp)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        int widest = mlp.Layers.Max(layer => Math.Max(layer.In, layer.Out));
        return widest + 1 + mlp.Layers.Count + 3;
    }

    /// <summary>W for the network of <paramref name="map"/> (one of the project's MLPs: the route of <see cref="Applies"/>).</summary>
    /// <exception cref="ArgumentException">The model is not an MLP.</exception>
    public static int FormingLength(IResidualProblem map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return map.Model is NetworkModel { Network: Mlp mlp }
            ? FormingLength(mlp)
            : throw new ArgumentException("the Cholesky route needs the per-layer Gram factors of an MLP", nameof(map));
    }

    /// <summary>c of the remarks for an m × m K̂ with the given trace and largest diagonal entry, at shift t; includes <see cref="SafetyFactor"/>.</summary>
    public static double RoundingBound(int m, int formingLength, double trace, double maxDiagonal, double shift)
    {
        double u = Float64.Epsilon / 2;
        double gammaM = Gamma(m + 1);
        double gammaW = Gamma(formingLength);
        if (!(gammaM < 1) || !(gammaW < 1))
        {
            return double.PositiveInfinity;
        }
        return SafetyFactor * ((((gammaM / (1 - gammaM)) + (gammaW * (1 + gammaW))) * trace) + (u * (maxDiagonal + shift)));
    }

    /// <summary>
    /// Tries to prove λmin(K) ≥ <paramref name="target"/>: Cholesky of fl(K̂ − tI) with t = target + c. True when it
    /// succeeds (the bound then holds); false when it breaks down (nothing is proved).
    /// </summary>
    public static bool ProvesLowerBound(Tensor gram, double target, int formingLength)
    {
        ArgumentNullException.ThrowIfNull(gram);
        using var scope = NewDisposeScope();
        int m = (int)gram.shape[0];
        var diagonal = gram.diagonal();
        double trace = diagonal.sum().item<double>();
        double maxDiagonal = diagonal.max().item<double>();
        double shift = target + RoundingBound(m, formingLength, trace, maxDiagonal, target);
        if (!(target > 0) || !double.IsFinite(shift))
        {
            return false;
        }
        var shifted = gram.clone();
        shifted.diagonal().MinusInPlace(shift);
        var (_, info) = linalg.cholesky_ex(shifted);
        return info.item<int>() == 0;
    }

    /// <summary>
    /// Decides full row rank from K = JJᵀ (m × m) without an eigendecomposition (see remarks). Returns a decision of rank m
    /// with <see cref="RankDecision.ProvenSigmaMin"/> set, or null when no test succeeded (K may be singular: the caller falls
    /// back to the eigenvalue route).
    /// </summary>
    /// <param name="gram">K̂, symmetric m × m.</param>
    /// <param name="formingLength">W of the remarks (<see cref="FormingLength(Mlp)"/>).</param>
    public static RankDecision? Decide(Tensor gram, int formingLength)
    {
        ArgumentNullException.ThrowIfNull(gram);
        using var scope = NewDisposeScope();
        int m = (int)gram.shape[0];
        if (LargestRitz(gram, EstimateSteps) is not var (theta, residual))
        {
            return null;
        }
        // λmax ≤ θmax + its residual (some eigenvalue lies within it, and θmax is below λmax): an upper estimate of σmax².
        double sigmaMax = Math.Sqrt(Math.Max(theta + residual, 0));
        double thetaMin;
        using (var factor = CholeskyFactor(gram))
        {
            if (factor is null)
            {
                return null; // K is not numerically positive definite: nothing to prove here.
            }
            // λmin(K) = 1/λmax(K⁻¹): Lanczos on K⁻¹ (two triangular solves per step) converges at that end in a few tens of
            // steps where Lanczos on K itself does not. A Ritz value of K⁻¹ is below λmax(K⁻¹), so 1/θ ≥ λmin(K): an estimate
            // from above, which only aims the test.
            var inverse = new InverseOperator(factor);
            var run = Lanczos.Eigenpairs(inverse, new LanczosOptions(1, SpectrumEnd.Largest, Math.Min(m, InverseSteps), Seed: 3));
            run.Eigenvectors.Dispose();
            if (run.Eigenvalues.Count == 0 || !(run.Eigenvalues[0] > 0))
            {
                return null;
            }
            thetaMin = 1 / run.Eigenvalues[0];
        }
        // The eigenvalue route's tolerance on σ (JacobianFactorization: √(mε)·σmax), so that both routes decide against one rule.
        double tolerance = Math.Sqrt(m * Float64.Epsilon) * sigmaMax;
        double least = Math.Pow(RankDecision.DecisionMargin * tolerance, 2);
        var targets = TargetFractions.Select(f => f * thetaMin).Where(s => s > least).Append(least);
        var diagonal = gram.diagonal();
        double trace = diagonal.sum().item<double>();
        double maxDiagonal = diagonal.max().item<double>();
        foreach (double target in targets)
        {
            if (ProvesLowerBound(gram, target, formingLength))
            {
                double resolution = Math.Sqrt(RoundingBound(m, formingLength, trace, maxDiagonal, target));
                return new RankDecision(m, tolerance, resolution, [], m, Basis)
                {
                    ProvenSigmaMin = Math.Sqrt(target),
                    SigmaMaxEstimate = sigmaMax,
                };
            }
        }
        return null;
    }

    /// <summary>
    /// The largest Ritz value of K and its explicit residual after <paramref name="steps"/> Lanczos steps (the operator's copy of
    /// K is released before returning), or null when Lanczos returned none.
    /// </summary>
    internal static (double Theta, double Residual)? LargestRitz(Tensor gram, int steps)
    {
        using var op = new DenseOperator(gram, isSymmetric: true);
        var run = Lanczos.Eigenpairs(op, new LanczosOptions(1, SpectrumEnd.Largest, Math.Min((int)gram.shape[0], steps), Seed: 4));
        run.Eigenvectors.Dispose();
        return run.Eigenvalues.Count > 0 ? (run.Eigenvalues[0], run.ResidualNorms[0]) : null;
    }

    /// <summary>The lower Cholesky factor of K, or null where the factorization breaks down (K not numerically positive definite).</summary>
    internal static Tensor? CholeskyFactor(Tensor gram)
    {
        using var scope = NewDisposeScope();
        var (factor, info) = linalg.cholesky_ex(gram);
        return info.item<int>() == 0 ? factor.MoveToOuterDisposeScope() : null;
    }

    /// <summary>K⁻¹ through its Cholesky factor L (K = LLᵀ): v ↦ L⁻ᵀL⁻¹v by two triangular solves; the factor is not owned.</summary>
    private sealed class InverseOperator(Tensor factor)
        : LinearOperator(factor.shape[0], factor.shape[0], factor.dtype, factor.device, isSymmetric: true)
    {
        protected override Tensor ApplyCore(Tensor v) => cholesky_solve(v.unsqueeze(1), factor).squeeze(1);

        protected override Tensor ApplyMatrixCore(Tensor block) => cholesky_solve(block, factor);
    }

    private static double Gamma(int k)
    {
        double ku = k * (Float64.Epsilon / 2);
        return ku / (1 - ku);
    }
}
