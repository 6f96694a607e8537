using System.Diagnostics;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>How the inertia of ∇²L is computed.</summary>
public enum InertiaMethod
{
    /// <summary>
    /// Gram on M for the squared loss when ℓd &lt; n (the cheaper route to the same answer, see <see cref="Certificate.ChooseMethod"/>);
    /// otherwise dense when n is small enough for the budget, else Gram.
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
/// <param name="MemoryBudgetBytes">Refuse a dense object larger than this (default 4 GiB).</param>
public sealed record CertificateOptions(InertiaMethod Method = InertiaMethod.Auto, double OnManifoldTolerance = OnManifoldTest.DefaultRelativeTolerance, long MemoryBudgetBytes = 4L << 30);

/// <summary>The counts of positive, zero and negative eigenvalues of ∇²L, and how they were decided.</summary>
/// <param name="Method">"dense" or "gram".</param>
/// <param name="Positive">Eigenvalues &gt; Tolerance.</param>
/// <param name="Zero">|λ| ≤ Tolerance.</param>
/// <param name="Negative">Eigenvalues &lt; −Tolerance.</param>
/// <param name="Tolerance">The threshold used.</param>
/// <param name="Eigenvalues">The nonzero eigenvalues, descending.</param>
/// <param name="Decided">Whether the counts rest on a resolved gap; false means the method cannot decide (see Note).</param>
/// <param name="Note">How the counts were decided, or why they could not be.</param>
/// <param name="ResidualTermNorm">‖∇²L − 2JᵀJ‖₂ where it was computed (dense), the Weyl bound on how far the spectrum is from that of 2JᵀJ.</param>
/// <param name="AllEigenvalues">All n eigenvalues of ∇²L, descending, when the dense method computed them; else null.</param>
public sealed record Inertia(string Method, int Positive, int Zero, int Negative, double Tolerance, double[] Eigenvalues, bool Decided, string Note, double? ResidualTermNorm, double[]? AllEigenvalues = null);

/// <summary>The certificate at a point: loss, residual, rank of J and dimension of M, inertia of ∇²L.</summary>
public sealed record CertificateResult(
    int N, int D, int Outputs, int Constraints, double Loss, double MaxAbsResidual, double OnManifoldTolerance, bool OnManifold,
    RankDecision Jacobian, Inertia Hessian, double Seconds)
{
    /// <summary>dim M = n − rank J (the dimension of the fibre H⁻¹(0) at a regular point).</summary>
    public int ManifoldDimension => N - Jacobian.Rank;

    /// <summary>rank J = ℓd: 0 is a regular value near this point (Theorem 2.1).</summary>
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
/// </remarks>
public static class Certificate
{
    /// <summary>
    /// The largest n for which <see cref="InertiaMethod.Auto"/> builds the dense Hessian off M (the limit the certificate has
    /// always used): n Hessian-vector products and two n × n eigen-decompositions took 73 s at n = 3001 on two cores (issue 9)
    /// and grow as n² to n³, so a dense certificate at the limit takes several minutes; beyond it the Gram route (which says
    /// when it cannot decide) is the practical answer.
    /// </summary>
    public const int AutoDenseLimit = 6000;

    /// <summary>
    /// The method <see cref="InertiaMethod.Auto"/> picks. Gram when the point is on M, a = 2 and ℓd &lt; n: there
    /// ∇²L = 2JᵀJ + R with ‖R‖ of the order of max|H| (negligible on M), so the Gram route gives the same counts as the
    /// dense one, and costs less in every term — ℓd Jacobian rows (one reverse pass each) against n Hessian-vector
    /// products (two to three passes each), and one O((ℓd)²n) factorisation of J against two O(n³) eigen-decompositions
    /// plus the O(ℓd·n²) product JᵀJ. The saving grows as (n/ℓd)²; measured at n = 3001 on a point of M: 2.5 s against 73 s.
    /// Otherwise (off M, a ≠ 2, or ℓd ≥ n) dense when its three n × n matrices fit the budget (and 1 GiB) and n ≤
    /// <see cref="AutoDenseLimit"/>, else Gram.
    /// </summary>
    /// <param name="n">Parameters.</param>
    /// <param name="constraints">ℓd.</param>
    /// <param name="squaredLoss">Whether a = 2.</param>
    /// <param name="onManifold">Whether the point is on M (<see cref="OnManifoldTest"/>).</param>
    /// <param name="memoryBudgetBytes">The budget of dense objects.</param>
    public static InertiaMethod ChooseMethod(int n, int constraints, bool squaredLoss, bool onManifold, long memoryBudgetBytes)
    {
        if (onManifold && squaredLoss && constraints < n)
        {
            return InertiaMethod.Gram;
        }
        long denseHessianBytes = 8L * n * n * 3;
        return denseHessianBytes <= Math.Min(memoryBudgetBytes, 1L << 30) && n <= AutoDenseLimit ? InertiaMethod.Dense : InertiaMethod.Gram;
    }

    /// <summary>Computes the certificate for <paramref name="map"/>'s model and data.</summary>
    /// <param name="map">The model and data.</param>
    /// <param name="options">Method, on-M tolerance and memory budget.</param>
    /// <param name="progress">
    /// Receives the stages as they happen, synchronously: "Jacobian", "dense Hessian j/n" (per block of columns),
    /// "eigenvalues", "residual term", or "Gram matrix" and "singular values".
    /// </param>
    public static CertificateResult Compute(ResidualMap map, CertificateOptions? options = null, IProgress<ProgressReport>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        options ??= new CertificateOptions();
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        int n = map.ParameterCount, d = map.Data.Count, l = map.Data.OutputDim, m = map.Constraints;
        ProgressReport.Report(progress, "residuals", 0);
        var manifold = OnManifoldTest.At(map, options.OnManifoldTolerance);
        double maxAbs = manifold.MaxAbsResidual, tol = manifold.Tolerance;
        bool onManifold = manifold.Holds;
        double loss = map.Loss();
        var method = options.Method;
        long denseHessianBytes = 8L * n * n * 3;
        if (method == InertiaMethod.Auto)
        {
            method = ChooseMethod(n, m, map.Exponent == 2.0, onManifold, options.MemoryBudgetBytes);
        }
        if (method == InertiaMethod.Dense && denseHessianBytes > options.MemoryBudgetBytes)
        {
            throw new ArgumentException($"the dense method needs the n × n Hessian ({denseHessianBytes / 1e9:0.0} GB for n = {n}), over the budget of {options.MemoryBudgetBytes / 1e9:0.0} GB; use --method gram (on M, ℓd × ℓd = {m} × {m})");
        }
        long gramBytes = 8L * m * m * 3;
        if (method == InertiaMethod.Gram && gramBytes > options.MemoryBudgetBytes)
        {
            throw new ArgumentException($"the gram method needs the ℓd × ℓd Gram matrix ({gramBytes / 1e9:0.0} GB for ℓd = {m}), over the budget of {options.MemoryBudgetBytes / 1e9:0.0} GB; use a subset of the data");
        }

        RankDecision rank;
        Inertia inertia;
        if (method == InertiaMethod.Dense)
        {
            ProgressReport.Report(progress, "Jacobian", 0.02);
            var j = map.Jacobian();
            rank = JacobianSpectrum.FromJacobian(j);
            inertia = DenseInertia(map, j, rank, options.MemoryBudgetBytes, ProgressReport.Within(progress, 0.05, 1, ""));
        }
        else
        {
            ProgressReport.Report(progress, "Gram matrix", 0.05);
            var k = GramMatrix.Compute(map);
            bool jFits = 8L * m * n <= Math.Min(options.MemoryBudgetBytes / 4, 1L << 28);
            ProgressReport.Report(progress, "singular values", 0.5);
            rank = jFits ? JacobianSpectrum.FromJacobian(map.Jacobian()) : JacobianSpectrum.FromGram(k);
            inertia = InertiaRule.FromJacobian(rank, n, map.Exponent == 2.0, onManifold);
        }
        ProgressReport.Report(progress, "done", 1);
        return new CertificateResult(n, d, l, m, loss, maxAbs, tol, onManifold, rank, inertia, watch.Elapsed.TotalSeconds);
    }

    /// <summary>The dense Hessian ∇²L ∈ ℝ^{n×n}, row by row from double backward (n Hessian-vector products).</summary>
    public static Tensor DenseHessian(ResidualMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        int n = map.ParameterCount;
        var hessian = zeros(n, n, dtype: float64);
        var x = map.Data.InputsTensor();
        var y = map.Data.TargetsTensor();
        var leaves = map.Model.Leaves.ToArray();
        for (long start = 0; start < map.Data.Count; start += map.BatchSize)
        {
            using var batch = NewDisposeScope();
            long count = Math.Min(map.BatchSize, map.Data.Count - start);
            var h = map.Model.Forward(x.narrow(0, start, count)) - y.narrow(0, start, count);
            var lossBatch = map.Exponent == 2.0 ? h.mul(h).sum() : h.abs().pow(map.Exponent).sum();
            var g = ParameterVector.Flatten(autograd.grad([lossBatch], leaves, create_graph: true, retain_graph: true, allow_unused: true).ToArray(), map.Model.Leaves);
            if (!g.requires_grad)
            {
                continue;
            }
            for (int k = 0; k < n; k++)
            {
                using var row = NewDisposeScope();
                var second = autograd.grad([g[k]], leaves, retain_graph: true, allow_unused: true);
                hessian[k].add_(ParameterVector.Flatten(second.ToArray(), map.Model.Leaves));
            }
        }
        // Symmetrize: the rows agree with the columns up to rounding.
        return ((hessian + hessian.t()) / 2).MoveToOuterDisposeScope();
    }

    private static Inertia DenseInertia(ResidualMap map, Tensor jacobian, RankDecision rank, long budgetBytes, IProgress<ProgressReport>? progress)
    {
        using var scope = NewDisposeScope();
        int n = map.ParameterCount;
        // The dense Hessian by n Hessian-vector products in blocks of columns, symmetrised (the one route to the dense ∇²L).
        var hessian = new HessianOperator(map).ToDense(budgetBytes, progress: new DenseColumns(progress, n));
        hessian = (hessian + hessian.t()).div_(2);
        ProgressReport.Report(progress, "eigenvalues", 0.85);
        var lambda = linalg.eigvalsh(hessian).data<double>();
        double? residualTerm = null;
        if (map.Exponent == 2.0)
        {
            ProgressReport.Report(progress, "residual term ‖∇²L − 2JᵀJ‖₂", 0.92);
            var gaussNewton = jacobian.t().matmul(jacobian).mul(2.0);
            residualTerm = linalg.eigvalsh(hessian - gaussNewton).abs().max().item<double>();
        }
        return InertiaRule.Dense(lambda.ToArray(), residualTerm, rank);
    }

    /// <summary>Maps <see cref="LinearOperator.ToDense"/>'s column progress to "dense Hessian j/n" over [0, 0.8] of the dense stage.</summary>
    private sealed class DenseColumns(IProgress<ProgressReport>? outer, int n) : IProgress<ProgressReport>
    {
        public void Report(ProgressReport value) =>
            ProgressReport.Report(outer, $"dense Hessian {(int)Math.Round(value.Fraction * n)}/{n}", 0.8 * value.Fraction);
    }
}
