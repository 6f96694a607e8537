using System.Diagnostics;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>How the inertia of ∇²L is computed.</summary>
public enum InertiaMethod
{
    /// <summary>Dense when n is small enough for the budget, else Gram.</summary>
    Auto,

    /// <summary>All n eigenvalues of the dense Hessian ∇²L (built by n Hessian-vector products).</summary>
    Dense,

    /// <summary>On M with a = 2, ∇²L = 2JᵀJ: the nonzero spectrum is 2·eig(JJᵀ), an ℓd × ℓd problem.</summary>
    Gram,
}

/// <summary>Settings of <see cref="Certificate"/>.</summary>
/// <param name="Method">Dense, Gram, or Auto.</param>
/// <param name="OnManifoldTolerance">The point is on M when max|H_k| ≤ this·max(1, max|y|); default 1e−8.</param>
/// <param name="MemoryBudgetBytes">Refuse a dense object larger than this (default 4 GiB).</param>
public sealed record CertificateOptions(InertiaMethod Method = InertiaMethod.Auto, double OnManifoldTolerance = 1e-8, long MemoryBudgetBytes = 4L << 30);

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
    /// <summary>Computes the certificate for <paramref name="map"/>'s model and data.</summary>
    public static CertificateResult Compute(ResidualMap map, CertificateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        options ??= new CertificateOptions();
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        int n = map.ParameterCount, d = map.Data.Count, l = map.Data.OutputDim, m = map.Constraints;
        var method = options.Method;
        long denseHessianBytes = 8L * n * n * 3;
        if (method == InertiaMethod.Auto)
        {
            method = denseHessianBytes <= Math.Min(options.MemoryBudgetBytes, 1L << 30) && n <= 6000 ? InertiaMethod.Dense : InertiaMethod.Gram;
        }
        if (method == InertiaMethod.Dense && denseHessianBytes > options.MemoryBudgetBytes)
        {
            throw new LandscapeInputException($"the dense method needs the n × n Hessian ({denseHessianBytes / 1e9:0.0} GB for n = {n}), over the budget of {options.MemoryBudgetBytes / 1e9:0.0} GB; use --method gram (on M, ℓd × ℓd = {m} × {m})");
        }
        long gramBytes = 8L * m * m * 3;
        if (method == InertiaMethod.Gram && gramBytes > options.MemoryBudgetBytes)
        {
            throw new LandscapeInputException($"the gram method needs the ℓd × ℓd Gram matrix ({gramBytes / 1e9:0.0} GB for ℓd = {m}), over the budget of {options.MemoryBudgetBytes / 1e9:0.0} GB; use a subset of the data");
        }

        var residuals = map.Residuals();
        double maxAbs = residuals.abs().max().item<double>();
        double loss = map.Loss();
        double tol = options.OnManifoldTolerance * Math.Max(1.0, map.Data.MaxAbsTarget());
        bool onManifold = maxAbs <= tol;

        RankDecision rank;
        Inertia inertia;
        if (method == InertiaMethod.Dense)
        {
            var j = map.Jacobian();
            rank = JacobianSpectrum.FromJacobian(j);
            inertia = DenseInertia(map, j, rank);
        }
        else
        {
            var k = GramMatrix.Compute(map);
            bool jFits = 8L * m * n <= Math.Min(options.MemoryBudgetBytes / 4, 1L << 28);
            rank = jFits ? JacobianSpectrum.FromJacobian(map.Jacobian()) : JacobianSpectrum.FromGram(k);
            inertia = GramInertia(map, k, rank, onManifold);
        }
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

    private static Inertia DenseInertia(ResidualMap map, Tensor jacobian, RankDecision rank)
    {
        using var scope = NewDisposeScope();
        int n = map.ParameterCount;
        var hessian = DenseHessian(map);
        var lambda = linalg.eigvalsh(hessian).data<double>().OrderByDescending(v => v).ToArray();
        double norm = lambda.Select(Math.Abs).DefaultIfEmpty(0).Max();
        double resolution = n * JacobianSpectrum.Epsilon * norm;
        double? residualTerm = null;
        if (map.Exponent == 2.0)
        {
            var gaussNewton = jacobian.t().matmul(jacobian).mul(2.0);
            residualTerm = linalg.eigvalsh(hessian - gaussNewton).abs().max().item<double>();
        }
        double tolerance = Math.Max(resolution, residualTerm ?? 0);
        int positive = lambda.Count(v => v > tolerance), negative = lambda.Count(v => v < -tolerance);
        var nonzero = lambda.Where(v => Math.Abs(v) > tolerance).ToArray();
        double smallestPositive = lambda.Where(v => v > tolerance).DefaultIfEmpty(0).Min();
        double largestZero = lambda.Where(v => Math.Abs(v) <= tolerance).Select(Math.Abs).DefaultIfEmpty(0).Max();
        bool resolved = (positive == 0 || smallestPositive >= RankDecision.DecisionMargin * tolerance) && largestZero <= tolerance;
        // The curvature the theorem predicts at the smallest constraint direction: 2σ_min(J)².
        double predicted = 2 * rank.SigmaAbove * rank.SigmaAbove;
        if (resolved && (predicted >= RankDecision.DecisionMargin * tolerance || rank.Rank == 0))
        {
            return new Inertia("dense", positive, n - positive - negative, negative, tolerance, nonzero, true,
                $"all n eigenvalues of ∇²L; tolerance max(n·ε·‖∇²L‖, ‖∇²L − 2JᵀJ‖₂) = {tolerance:G3}", residualTerm, lambda);
        }
        if (map.Exponent == 2.0 && rank.Decided && residualTerm is { } r && 2 * rank.SigmaAbove * rank.SigmaAbove > RankDecision.DecisionMargin * r)
        {
            // Weyl: the eigenvalues of ∇²L lie within r of those of 2JᵀJ, whose nonzero ones are 2σᵢ² > 10r.
            var fromJ = rank.SingularValues.Take(rank.Rank).Select(s => 2 * s * s).ToArray();
            return new Inertia("dense", rank.Rank, n - rank.Rank, 0, r, fromJ, true,
                $"dense eigenvalues resolve only to {resolution:G3} but 2σmin(J)² = {predicted:G3}: counts decided from σ(J) (2JᵀJ) with the Weyl bound ‖∇²L − 2JᵀJ‖₂ = {r:G3}; the n − rank zero eigenvalues lie in [−{r:G3}, {r:G3}]", residualTerm, lambda);
        }
        return new Inertia("dense", positive, n - positive - negative, negative, tolerance, nonzero, false,
            $"cannot decide: the smallest curvature 2σmin(J)² = {predicted:G3} is not resolved above the tolerance {tolerance:G3}", residualTerm, lambda);
    }

    private static Inertia GramInertia(ResidualMap map, Tensor gram, RankDecision rank, bool onManifold)
    {
        int n = map.ParameterCount;
        var eigen = rank.SingularValues.Take(rank.Rank).Select(s => 2 * s * s).ToArray();
        double tolerance = 2 * rank.Tolerance * rank.Tolerance;
        if (map.Exponent != 2.0)
        {
            return new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, false, "cannot decide: ∇²L = 2JᵀJ holds for the squared loss (a = 2) only", null);
        }
        if (!onManifold)
        {
            return new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, false, "cannot decide: the point is not on M, where ∇²L = 2JᵀJ; use the dense method", null);
        }
        string basis = rank.Basis == "svd of J" ? "σ(J) from the SVD of J" : "σ(J) = √eig(JJᵀ)";
        return rank.Decided
            ? new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, true, $"on M, ∇²L = 2JᵀJ: positive eigenvalues 2σᵢ² from {basis}, the other n − rank are 0", null)
            : new Inertia("gram", rank.Rank, n - rank.Rank, 0, tolerance, eigen, false, $"cannot decide: the rank gap of J is not resolved ({basis}, tolerance {rank.Tolerance:G3})", null);
    }
}
