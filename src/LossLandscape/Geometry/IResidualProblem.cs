using LossLandscape.Curvature;
using static TorchSharp.torch;

namespace LossLandscape.Geometry;

/// <summary>
/// The least-squares problem of the paper as the optimizers, the projection onto M and the walk on M see it: a point
/// p ∈ ℝⁿ that can be read and moved, the residuals H(p) ∈ ℝ^{ℓd}, L(p) = Σ_k |H_k(p)|^a with its gradient and Hessian,
/// and J = ∂H/∂p through a <see cref="JacobianFactorization"/>.
/// </summary>
/// <remarks>
/// <para>Two implementations ship: <see cref="ResidualMap"/> (the model and the data in this process) and the cluster's
/// session (<c>LossLandscape.Cluster.ClusterSession</c>: the data in shards on Orleans workers, every sum over samples
/// computed there). The same code runs on both: <see cref="Training.Trainer.Run(IResidualProblem, Training.Optimizer, Training.TrainingOptions, IProgress{Training.TrainingProgress}, CancellationToken)"/>
/// with gradient descent, L-BFGS or Gauss–Newton, <see cref="GaussNewtonProjection"/> and <see cref="Paths.ManifoldWalk"/>.</para>
/// <para>Tensors returned are new (the caller owns them) and belong to the caller's dispose scope.</para>
/// </remarks>
public interface IResidualProblem
{
    /// <summary>The number of parameters n.</summary>
    int ParameterCount { get; }

    /// <summary>The number of constraints ℓd.</summary>
    int Constraints { get; }

    /// <summary>The exponent a of L = Σ|H_k|^a.</summary>
    double Exponent { get; }

    /// <summary>max|y| over the targets (the scale of <see cref="Training.Trainer.RoundingFloor(IResidualProblem)"/>).</summary>
    double MaxAbsTarget { get; }

    /// <summary>A copy of the current point p (n values, float64).</summary>
    Tensor GetPoint();

    /// <summary>Moves the problem to the point <paramref name="point"/> (n values).</summary>
    void SetPoint(Tensor point);

    /// <summary>H(p) ∈ ℝ^{ℓd}, sample-major (entry i·ℓ + j is f_j(xᵢ) − y_{ij}).</summary>
    Tensor Residuals();

    /// <summary>L(p).</summary>
    double Loss();

    /// <summary>(L(p), ∇L(p)).</summary>
    (double Loss, Tensor Gradient) LossAndGradient();

    /// <summary>∇²L at the current point, as an operator (its products are taken at the point current when applied).</summary>
    LinearOperator Hessian();

    /// <summary>The route this problem factors J by, given a memory budget (<see cref="JacobianFactorization.ChooseRoute"/> for a map).</summary>
    JacobianRoute ChooseRoute(long budgetBytes);

    /// <summary>Bytes one factorization of J by <paramref name="route"/>, and one Levenberg–Marquardt step with it, hold at once.</summary>
    long StepBytes(JacobianRoute route);

    /// <summary>
    /// Factors J at the current point by <paramref name="route"/> (not <see cref="JacobianRoute.Auto"/>), without a budget
    /// check: the caller has checked <see cref="StepBytes"/>. On the Gram route the factorization's products with J and Jᵀ are
    /// taken at the point current when they are applied.
    /// </summary>
    JacobianFactorization FactorJacobian(JacobianRoute route);
}
