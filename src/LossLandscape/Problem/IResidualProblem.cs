using LossLandscape.Data;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Problem;

/// <summary>
/// The objective every command and estimator takes: a model fit to d rows with ℓ targets each at a point p ∈ ℝⁿ that can
/// be read and moved, the residual map H: ℝⁿ → ℝ^{ℓd}, H(p) = (f_p(xᵢ) − yᵢ), and the loss L = Σ_k |H_k|^a with its
/// gradient, its curvature's products and the products and factors of J = ∂H/∂p. Every quantity is a sum (or a stack)
/// over the rows, taken exactly over all of them.
/// </summary>
/// <remarks>
/// <para>Two implementations ship, and nothing above this layer tells them apart: <see cref="ResidualMap"/> (the model and
/// the data in this process, the rows taken batch by batch) and the cluster's session (<c>LossLandscape.Cluster.ClusterSession</c>:
/// the rows in shards on Orleans workers, each shard answering with the same <see cref="ResidualMap"/> on its rows and the
/// driver summing or stacking the answers in shard order). The operators (<c>Curvature</c>), the factorizations and
/// certificates (<c>Geometry</c>), training, paths and slices are written once against this interface.</para>
/// <para>Tensors returned are new (the caller owns them) and belong to the caller's dispose scope. Products take a block
/// of k columns at once (an n × k or ℓd × k float64 tensor) and answer with a block of k columns.</para>
/// </remarks>
public interface IResidualProblem
{
    /// <summary>The number of parameters n.</summary>
    int ParameterCount { get; }

    /// <summary>The number of rows d.</summary>
    int Rows { get; }

    /// <summary>Targets per row ℓ (the model's outputs).</summary>
    int Outputs { get; }

    /// <summary>The number of constraints ℓd (the codimension of M at a regular point).</summary>
    int Constraints { get; }

    /// <summary>The exponent a of L = Σ|H_k|^a; NaN for a loss not of that form (<see cref="LossFunction.ResidualExponent"/>).</summary>
    double Exponent { get; }

    /// <summary>
    /// The loss: the paper's Σ|H_k|^a (the default), the mean squared error or cross-entropy. Every quantity below is of this
    /// loss; what is about M = H⁻¹(0) needs <see cref="LossFunction.IsResidualSum"/> (<see cref="LossFunction.RequireResidualSum"/>).
    /// </summary>
    LossFunction LossFunction { get; }

    /// <summary>max|y| over the targets: the scale of the on-M threshold and of the trainer's rounding floor.</summary>
    double MaxAbsTarget { get; }

    /// <summary>
    /// The model at the current point, for what is read from its structure (layers, activations): a map's own model; a
    /// cluster's replica on the driver, moved with every <see cref="SetPoint"/>. Move the point with <see cref="SetPoint"/>, never
    /// through the model.
    /// </summary>
    IDifferentiableModel Model { get; }

    /// <summary>The rows, read batch by batch (a cluster's copy on the driver, from which its shards' fingerprints are taken).</summary>
    IDataSource Data { get; }

    /// <summary>
    /// A token checked before each batch of rows of every evaluation (H, L, ∇L, J and every product): once it is cancelled
    /// the next evaluation throws <see cref="OperationCanceledException"/>. Fixed when the problem is made (default: none);
    /// the computations on the problem check the token of the <see cref="Engine.RunLimits"/> they are given between their
    /// iterations.
    /// </summary>
    CancellationToken Cancellation { get; }

    /// <summary>A copy of the current point p (n values, float64).</summary>
    Tensor GetPoint();

    /// <summary>Moves the problem to the point <paramref name="point"/> (n values).</summary>
    void SetPoint(Tensor point);

    /// <summary>H(p) ∈ ℝ^{ℓd}, sample-major (entry i·ℓ + j is f_j(xᵢ) − y_{ij}).</summary>
    Tensor Residuals();

    /// <summary>L(p).</summary>
    double Loss();

    /// <summary>∇L(p) ∈ ℝⁿ.</summary>
    Tensor Gradient();

    /// <summary>(L(p), ∇L(p)) from one forward and one backward pass per batch.</summary>
    (double Loss, Tensor Gradient) LossAndGradient();

    /// <summary>
    /// (Σ_{i∈B} |hᵢ|^a, its gradient) over the rows <paramref name="rows"/> only (indices into 0 … d − 1, a mini-batch),
    /// not rescaled.
    /// </summary>
    (double Loss, Tensor Gradient) RowsLossAndGradient(long[] rows);

    /// <summary>∇²L V for an n × k block V (Pearlmutter's product, summed over the rows).</summary>
    Tensor HessianTimes(Tensor block);

    /// <summary>G V for an n × k block V, G = Jᵀ diag(ℓ″(H)) J the generalised Gauss–Newton matrix (2JᵀJ for a = 2).</summary>
    Tensor GaussNewtonTimes(Tensor block);

    /// <summary>J V, an ℓd × k block, for an n × k block V.</summary>
    Tensor JacobianTimes(Tensor block);

    /// <summary>Jᵀ W, an n × k block, for an ℓd × k block W.</summary>
    Tensor JacobianTransposeTimes(Tensor block);

    /// <summary>J itself, ℓd × n (float64), at the current point.</summary>
    Tensor Jacobian();

    /// <summary>
    /// The per-layer factors of J where the model has them (the project's MLPs): for each layer the inputs a (d × in) and
    /// the back-propagated δ (ℓd × out), the rows in the problem's order, from which the Gram matrix JJᵀ is formed without J
    /// (<c>Geometry.GramMatrix</c>); null where the model has no such factors.
    /// </summary>
    IReadOnlyList<(Tensor Inputs, Tensor Deltas)>? GramFactors();
}

/// <summary>What is computed the same way from any <see cref="IResidualProblem"/>'s members.</summary>
public static class ResidualProblemExtensions
{
    /// <summary>max_k |H_k| at the problem's current point (one pass for the residuals).</summary>
    public static double MaxAbsResidual(this IResidualProblem problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        using var scope = NewDisposeScope();
        return problem.Residuals().abs().max().item<double>();
    }
}
