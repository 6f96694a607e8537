using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>Settings of <see cref="ManifoldWalk"/>.</summary>
/// <param name="Steps">Number of steps.</param>
/// <param name="StepSize">Length of each tangent step ‖t‖.</param>
/// <param name="Seed">Seed of the random directions.</param>
/// <param name="Tolerance">Retraction tolerance on max|H| (absolute).</param>
public sealed record WalkOptions(int Steps, double StepSize, int Seed, double Tolerance);

/// <summary>One recorded step.</summary>
/// <param name="Step">0 is the start.</param>
/// <param name="Loss">L after the retraction.</param>
/// <param name="MaxAbsResidual">max|H| after the retraction.</param>
/// <param name="Rank">rank J after the step (eig of JJᵀ).</param>
/// <param name="PathLength">Σ of ‖p_{s} − p_{s−1}‖ so far.</param>
/// <param name="Displacement">‖p_s − p_0‖.</param>
/// <param name="NormalCorrection">‖retraction move‖: how far the retraction pulled back onto M (second order in the step).</param>
/// <param name="RetractionSteps">Gauss–Newton steps of the retraction.</param>
public sealed record WalkStep(int Step, double Loss, double MaxAbsResidual, int Rank, double PathLength, double Displacement, double NormalCorrection, int RetractionSteps);

/// <summary>The walk's record.</summary>
public sealed record WalkResult(IReadOnlyList<WalkStep> Steps, SolverStatus Status);

/// <summary>
/// A random walk on M = H⁻¹(0): a tangent step t = Πu, Π = I − J⁺J the projection onto ker J (the tangent
/// space of M at a regular point), scaled to the step size; then a retraction onto M by minimum-norm
/// Gauss–Newton steps. That the loss stays at 0 while the point travels shows that M is a manifold of
/// positive dimension (Theorems 2.1 and 4.1), not a point.
/// </summary>
/// <remarks>Π = I − VVᵀ from the thin SVD of J when it fits (<see cref="JacobianSvd"/>); otherwise Πu = u − Jᵀ(JJᵀ)⁺Ju, with Ju by forward mode, Jᵀz by reverse mode and JJᵀ from <see cref="GramMatrix"/>.</remarks>
public static class ManifoldWalk
{
    /// <summary>Walks the model's point (the model is moved).</summary>
    public static WalkResult Run(ResidualMap map, WalkOptions options)
    {
        ArgumentNullException.ThrowIfNull(map);
        ArgumentNullException.ThrowIfNull(options);
        using var scope = NewDisposeScope();
        var rng = new Random(options.Seed);
        var start = ParameterVector.Get(map.Model);
        var steps = new List<WalkStep> { Record(map, 0, 0, start, 0, 0) };
        double length = 0;
        var status = SolverStatus.Converged;
        for (int s = 1; s <= options.Steps; s++)
        {
            using var stepScope = NewDisposeScope();
            var before = ParameterVector.Get(map.Model);
            var u = tensor(SeededNormal.Vector(rng, map.ParameterCount));
            var t = TangentProjection(map, u);
            t = t * (options.StepSize / t.norm().item<double>());
            ParameterVector.Set(map.Model, before + t);
            var afterStep = ParameterVector.Get(map.Model);
            var retraction = GaussNewtonProjection.Project(map, new GaussNewtonOptions(options.Tolerance, MaxSteps: 20));
            if (retraction.Status != SolverStatus.Converged)
            {
                status = retraction.Status;
            }
            var after = ParameterVector.Get(map.Model);
            length += (after - before).norm().item<double>();
            double correction = (after - afterStep).norm().item<double>();
            steps.Add(Record(map, s, length, start, correction, retraction.Steps));
        }
        return new WalkResult(steps, status);
    }

    /// <summary>Πu = u − Jᵀ(JJᵀ)⁺Ju: the component of u tangent to the fibre of H.</summary>
    public static Tensor TangentProjection(ResidualMap map, Tensor u)
    {
        ArgumentNullException.ThrowIfNull(map);
        using var scope = NewDisposeScope();
        if ((long)map.Constraints * map.ParameterCount <= GaussNewtonProjection.DenseJacobianLimit && map.Constraints <= map.ParameterCount)
        {
            using var svd = new JacobianSvd(map.Jacobian());
            return svd.TangentProjection(u, svd.Rank().Tolerance).MoveToOuterDisposeScope();
        }
        var ju = new JacobianOperator(map).Apply(u);
        var z = GaussNewtonProjection.SolveGram(GramMatrix.Compute(map), ju);
        return (u - new JacobianTransposeOperator(map).Apply(z)).MoveToOuterDisposeScope();
    }

    private static WalkStep Record(ResidualMap map, int step, double length, Tensor start, double correction, int retractionSteps)
    {
        using var scope = NewDisposeScope();
        var rank = JacobianSpectrum.Best(map).Rank;
        return new WalkStep(step, map.Loss(), map.Residuals().abs().max().item<double>(), rank, length,
            (ParameterVector.Get(map.Model) - start).norm().item<double>(), correction, retractionSteps);
    }
}
