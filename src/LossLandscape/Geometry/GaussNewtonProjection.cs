using LossLandscape.Problem;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>Settings of <see cref="GaussNewtonProjection"/>.</summary>
/// <param name="Tolerance">Stop when max_k |H_k| ≤ Tolerance (absolute).</param>
/// <param name="MaxIterations">The most Gauss–Newton steps.</param>
public sealed record GaussNewtonOptions(double Tolerance, int MaxIterations = 30);

/// <summary>The outcome of a projection onto M.</summary>
/// <param name="Status">Converged when max|H| ≤ tolerance; Breakdown when no damping decreases |H|².</param>
/// <param name="Steps">Steps taken.</param>
/// <param name="MaxResidualHistory">max|H| before the first step and after each step.</param>
/// <param name="Distance">‖p_end − p_start‖₂.</param>
/// <param name="Factorizations">Factorizations of J (<see cref="JacobianFactorization"/>) made: one per step.</param>
public sealed record GaussNewtonResult(SolverStatus Status, int Steps, IReadOnlyList<double> MaxResidualHistory, double Distance, int Factorizations)
{
    /// <summary>max|H| at the end.</summary>
    public double FinalMaxResidual => MaxResidualHistory[^1];

    /// <summary>The route J was factored by: the SVD of J, or the Gram matrix JJᵀ with J never formed (<see cref="JacobianFactorization.ChooseRoute"/>).</summary>
    public JacobianRoute Route { get; init; }
}

/// <summary>
/// Projects a point onto M = H⁻¹(0) by minimum-norm Gauss–Newton steps p ← p − J⁺H(p), J⁺H = Jᵀ(JJᵀ)⁺H, damped by
/// Levenberg–Marquardt where a step does not decrease |H|² enough. At a regular point (rank J = ℓd) the iteration
/// converges quadratically, and the limit is, to first order, the nearest point of M.
/// </summary>
/// <remarks>
/// Each step factors J once (<see cref="JacobianFactorization"/>, its route rule and rank tolerance; singular values
/// at or below the tolerance are dropped, which keeps steps finite at rank-deficient points) and takes one
/// <see cref="LevenbergMarquardt"/> step: the Gauss–Newton step when its gain ratio is at least 1/4, else Nielsen's
/// damping. When no damping decreases |H|², the status is <see cref="SolverStatus.Breakdown"/>.
/// </remarks>
public static class GaussNewtonProjection
{
    /// <summary>Moves <paramref name="map"/>'s point onto M (or as close as the budget allows).</summary>
    /// <param name="map">A <see cref="ResidualMap"/> (its model is moved) or any other <see cref="IResidualProblem"/>, such as a cluster session.</param>
    /// <param name="options">Tolerance and the most steps.</param>
    /// <param name="limits">The budget of the factorization of J (<see cref="GramCholesky.StepBytes"/>); the token, checked before each step.</param>
    /// <exception cref="MemoryBudgetExceededException">The factorization of J does not fit the budget.</exception>
    public static GaussNewtonResult Project(IResidualProblem map, GaussNewtonOptions options, RunLimits? limits = null)
    {

        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        limits ??= RunLimits.Default;
        var route = JacobianFactorization.ChooseRoute(map, limits);
        // The operation holds one factorization at a time, plus vectors of length n and ℓd.
        limits.Require($"the projection onto M (J is {map.Constraints} × {map.ParameterCount})", GramCholesky.StepBytes(map, route),
            $"use a subset of the data (ℓd = {map.Constraints})", BudgetRemedy.Rows);
        return ProjectBy(map, options, route, limits);
    }

    /// <summary>
    /// The projection by <paramref name="route"/>, for callers that have checked the budget of their whole operation; the
    /// token of <paramref name="limits"/> (default none) is checked before each step.
    /// </summary>
    internal static GaussNewtonResult ProjectBy(IResidualProblem map, GaussNewtonOptions options, JacobianRoute route, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        map.LossFunction.RequireResidualSum("the projection onto M (Gauss–Newton on H)");
        limits ??= RunLimits.Default;
        using var scope = NewDisposeScope();
        var start = map.GetPoint();
        var history = new List<double> { map.MaxAbsResidual() };
        var status = SolverStatus.StoppedWithoutConvergence;
        var damping = new LevenbergMarquardt(LevenbergMarquardt.DefaultInitialDamping, LevenbergMarquardt.DefaultMaxDampingIncreases);
        int steps = 0, factorizations = 0;
        while (true)
        {
            if (history[^1] <= options.Tolerance)
            {
                status = SolverStatus.Converged;
                break;
            }
            if (steps >= options.MaxIterations)
            {
                break;
            }
            limits.ThrowIfCancellationRequested();
            using var stepScope = NewDisposeScope();
            var h = map.Residuals();
            factorizations++;
            var outcome = damping.Step(map, route, h, limits);
            steps++;
            if (!outcome.Accepted)
            {
                status = SolverStatus.Breakdown;
                break;
            }
            history.Add(outcome.MaxAbsResidual);
        }
        double distance = (map.GetPoint() - start).norm().item<double>();
        return new GaussNewtonResult(status, steps, history, distance, factorizations) { Route = route };
    }
}
