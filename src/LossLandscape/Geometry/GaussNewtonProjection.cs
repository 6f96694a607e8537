using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>Settings of <see cref="GaussNewtonProjection"/>.</summary>
/// <param name="Tolerance">Stop when max_k |H_k| ≤ Tolerance (absolute).</param>
/// <param name="MaxSteps">Iteration budget.</param>
public sealed record GaussNewtonOptions(double Tolerance, int MaxSteps = 30);

/// <summary>The outcome of a projection onto M.</summary>
/// <param name="Status">Converged when max|H| ≤ tolerance.</param>
/// <param name="Steps">Gauss–Newton steps taken.</param>
/// <param name="MaxResidualHistory">max|H| before the first step and after each step.</param>
/// <param name="Distance">‖p_end − p_start‖₂.</param>
public sealed record GaussNewtonResult(SolverStatus Status, int Steps, IReadOnlyList<double> MaxResidualHistory, double Distance)
{
    /// <summary>max|H| at the end.</summary>
    public double FinalMaxResidual => MaxResidualHistory[^1];
}

/// <summary>
/// Projects a point onto M = H⁻¹(0) by Gauss–Newton steps of minimum norm, p ← p − J⁺H(p), with
/// J⁺H = Jᵀ(JJᵀ)⁺H. At a regular point (rank J = ℓd) the iteration converges quadratically, and the
/// limit is, to first order, the nearest point of M.
/// </summary>
/// <remarks>
/// When ℓd·n ≤ <see cref="DenseJacobianLimit"/>, J⁺ comes from the thin SVD of J (<see cref="JacobianFactorization"/>),
/// singular values below the rank tolerance dropped (a pseudo-inverse, which keeps steps finite at
/// rank-deficient points). Above it, K = JJᵀ comes from <see cref="GramMatrix"/> (factored for MLPs,
/// never forming J), its eigenvalues below ℓd·ε·λmax are dropped, and Jᵀz is one reverse pass
/// (<see cref="Curvature.JacobianTransposeOperator"/>). A step that does not decrease |H|² is damped
/// (Levenberg–Marquardt with μ adapted across steps); if 40 increases of μ do not decrease it, the status
/// is <see cref="SolverStatus.Breakdown"/>.
/// </remarks>
public static class GaussNewtonProjection
{
    /// <summary>Moves <paramref name="map"/>'s model onto M (or as close as the budget allows).</summary>
    public static GaussNewtonResult Project(ResidualMap map, GaussNewtonOptions options)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        var start = ParameterVector.Get(map.Model);
        var history = new List<double> { MaxAbs(map) };
        var status = SolverStatus.StoppedWithoutConvergence;
        int steps = 0;
        double mu = 0;
        while (true)
        {
            if (history[^1] <= options.Tolerance)
            {
                status = SolverStatus.Converged;
                break;
            }
            if (steps >= options.MaxSteps)
            {
                break;
            }
            using var stepScope = NewDisposeScope();
            var p = ParameterVector.Get(map.Model);
            var r = map.Residuals();
            using var linearization = JacobianFactorization.At(map);
            double before = SumOfSquares(r);
            double bestSquares = double.PositiveInfinity, best = double.PositiveInfinity;
            // μ = 0 is the Gauss–Newton step J⁺H. When a step does not decrease |H|², Levenberg–Marquardt
            // damping s = Jᵀ(JJᵀ + μI)⁻¹H: μ grows ×4 from 1e−10·σmax² until |H|² decreases, and is
            // divided by 3 after each success (back to 0 below 1e−14·σmax²), so it adapts across steps.
            double scale = linearization.SigmaMax * linearization.SigmaMax;
            for (int attempt = 0; attempt < 40; attempt++)
            {
                ParameterVector.Set(map.Model, p - linearization.Step(r, mu));
                using var trial = NewDisposeScope();
                var h = map.Residuals();
                bestSquares = SumOfSquares(h);
                if (bestSquares < before)
                {
                    best = h.abs().max().item<double>();
                    mu = mu / 3 < 1e-14 * scale ? 0 : mu / 3;
                    break;
                }
                mu = mu == 0 ? 1e-10 * scale : mu * 4;
            }
            steps++;
            if (!(bestSquares < before))
            {
                ParameterVector.Set(map.Model, p);
                status = SolverStatus.Breakdown;
                break;
            }
            history.Add(best);
        }
        double distance = (ParameterVector.Get(map.Model) - start).norm().item<double>();
        return new GaussNewtonResult(status, steps, history, distance);
    }

    /// <summary>
    /// Largest ℓd·n for which J is formed and factored (<see cref="JacobianSvd"/>, error ∝ κ(J)); above it the
    /// Gram route (error ∝ κ(J)²) is used. 2²⁵ entries: 256 MB for J and as much for its Q factor.
    /// </summary>
    public const long DenseJacobianLimit = 1L << 25;

    /// <summary>J⁺r, the minimum-norm solution of J s = r: by the SVD of J when it is small enough, else Jᵀ(JJᵀ)⁺r.</summary>
    public static Tensor MinimumNormStep(ResidualMap map, Tensor r)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        using var linearization = JacobianFactorization.At(map);
        return linearization.Step(r, 0).MoveToOuterDisposeScope();
    }

    /// <summary>K⁺r by the eigendecomposition of the symmetric K, dropping eigenvalues ≤ m·ε·λmax.</summary>
    public static Tensor SolveGram(Tensor gram, Tensor r)
    {
        using var scope = NewDisposeScope();
        var (lambda, vectors) = linalg.eigh(gram);
        double max = lambda.max().item<double>();
        double cut = gram.shape[0] * JacobianSpectrum.Epsilon * Math.Max(max, 0);
        var inverse = where(lambda.gt(cut), lambda.reciprocal(), zeros_like(lambda));
        return vectors.matmul(inverse * vectors.t().matmul(r)).MoveToOuterDisposeScope();
    }

    private static double SumOfSquares(Tensor h) => h.dot(h).item<double>();

    private static double MaxAbs(ResidualMap map)
    {
        using var scope = NewDisposeScope();
        return map.Residuals().abs().max().item<double>();
    }
}
