using System.Diagnostics;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using static TorchSharp.torch;

namespace LossLandscape.Cluster;

/// <summary>
/// The certificate of <see cref="Certificate.Compute"/> with its gram method, with every sum over the data on the shards:
/// the residuals H (on M?), L, and J by the session's route (<see cref="ClusterSession.ChooseRoute"/>): its SVD, J's rows
/// gathered from the shards, when it fits the driver, as the single-process rule does; else K = JJᵀ from the shards'
/// per-layer factors (<see cref="ClusterSession.Gram"/>), the driver holding only the ℓd × ℓd matrix K, never J.
/// </summary>
/// <remarks>
/// On the SVD route rank J is the single-process decision (<see cref="JacobianFactorization"/>, resolution √max(ℓd, n)·ε·σmax).
/// On the Gram route it is decided from σᵢ = √max(λᵢ(K), 0) with the Gram route's resolution √(ℓd·ε)·σmax, which leaves an
/// ill-conditioned point (a constructed one) undecided where the SVD decides. The inertia of ∇²L follows from the rank as in
/// the single-process gram method (<see cref="InertiaRule.FromJacobian"/>; Proposition 2.3: on M with a = 2, ∇²L = 2JᵀJ). The
/// single-process extras of the Gram route are not distributed: the Cholesky test of JJᵀ − tI for large ℓd and the triangular
/// activation certificate, nor is the dense method (n Hessian columns).
/// </remarks>
public static class DistributedCertificate
{
    /// <summary>The basis the rank decision names.</summary>
    public const string Basis = "eig of JJᵀ (distributed)";

    /// <summary>The certificate of the session's current point.</summary>
    /// <param name="session">An open session over an MLP.</param>
    /// <param name="relativeTolerance">The on-M rule's tolerance (<see cref="OnManifoldTest"/>: max|H| ≤ this·max(1, max|y|)).</param>
    /// <param name="budgetBytes">The memory budget the ℓd × ℓd matrices must fit.</param>
    /// <exception cref="MemoryBudgetExceededException">The route's matrices exceed the budget.</exception>
    /// <exception cref="NotSupportedException">The network is not an MLP.</exception>
    public static CertificateResult Compute(ClusterSession session, double relativeTolerance = OnManifoldTest.DefaultRelativeTolerance, long budgetBytes = MemoryBudget.DefaultBytes)
    {
        ArgumentNullException.ThrowIfNull(session);
        var watch = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        int n = session.ParameterCount, d = session.Data.Count, l = session.OutputDim, m = session.Constraints;
        var route = session.ChooseRoute(budgetBytes);
        MemoryBudget.Require(route == JacobianRoute.Svd ? $"the distributed certificate (the SVD of J, {m} × {n})" : $"the distributed gram certificate (JJᵀ, {m} × {m})",
            session.StepBytes(route), budgetBytes, $"use a subset of the data (ℓd = {m})");
        double maxAbs = session.Residuals().abs().max().item<double>();
        double tolerance = relativeTolerance * Math.Max(1.0, session.Data.MaxAbsTarget());
        bool onManifold = maxAbs <= tolerance;
        double loss = session.Loss();
        RankDecision rank;
        if (route == JacobianRoute.Svd)
        {
            using var factors = session.FactorJacobian(JacobianRoute.Svd);
            rank = factors.Rank;
        }
        else
        {
            rank = RankOfGram(session.Gram(), m);
        }
        var inertia = InertiaRule.FromJacobian(rank, n, session.Exponent == 2.0, onManifold);
        return new CertificateResult(n, d, l, m, loss, maxAbs, tolerance, onManifold, rank, inertia, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// rank J from K = JJᵀ: σᵢ = √max(λᵢ, 0) descending, decided with the resolution √(m·ε)·σmax of the single-process
    /// Gram route (the eigenvalues of K are accurate to about ε·‖K‖, so σ to √(ε·‖K‖)).
    /// </summary>
    public static RankDecision RankOfGram(Tensor gram, int constraints)
    {
        ArgumentNullException.ThrowIfNull(gram);
        using var scope = NewDisposeScope();
        return JacobianFactorization.RankFromEigenvalues(linalg.eigvalsh(gram).data<double>().ToArray(), constraints, constraints, Basis);
    }
}
