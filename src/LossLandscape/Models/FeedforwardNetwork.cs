using LossLandscape.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace LossLandscape.Models;

/// <summary>
/// A feedforward network as a function of one flat parameter vector: f: ℝⁿ × ℝ^{d×p} → ℝ^{d×ℓ},
/// (p, X) ↦ f_p(X). The flat vector p is the single source of truth; every geometric object
/// (the residual map H, its Jacobian J, the Hessian of L, tangent spaces of M) lives in ℝⁿ.
/// </summary>
/// <remarks>
/// Section 3 of the paper defines a feedforward network by a DAG G(V, E), a labelling
/// π: E ∪ V → {1..m} and an activation σ. <see cref="Mlp"/> is the layered special case,
/// <see cref="DagNetwork"/> the general one (shared parameters included).
/// </remarks>
public abstract class FeedforwardNetwork
{
    /// <summary>The input dimension p.</summary>
    public abstract int InputDim { get; }

    /// <summary>
    /// The shape of one input row, whose product is p: [p] (a flat row) unless the network takes images, e.g. [c, h, w] for
    /// a <see cref="SequentialNetwork"/> that begins with a convolution. <see cref="Forward"/> takes rows in this shape or flat.
    /// </summary>
    public virtual IReadOnlyList<long> InputShape => [InputDim];

    /// <summary>The number of outputs ℓ.</summary>
    public abstract int OutputDim { get; }

    /// <summary>The number of parameters n (the length of p).</summary>
    public abstract int ParameterCount { get; }

    /// <summary>
    /// The affine input scaling stored with the model: the network sees (x − shift)/scale, so that
    /// f is always a function of the raw inputs. <c>null</c> means the identity.
    /// </summary>
    public InputScaling? Scaling { get; init; }

    /// <summary>
    /// Whether f is computed in float64 (every network of the project's own formats, and a TorchScript module unless opened
    /// in float32): decisions of rank and inertia need it (<see cref="TorchScriptNetwork"/>).
    /// </summary>
    public virtual bool ComputesInFloat64 => true;

    /// <summary>The activations the network uses, for reporting.</summary>
    public abstract IReadOnlyList<Activations.Activation> DistinctActivations { get; }

    /// <summary>
    /// f_p(X): the outputs for raw inputs <paramref name="inputs"/> (d × p, or d rows of any shape holding p values each,
    /// e.g. d × <see cref="InputShape"/>), a d × ℓ tensor, differentiable in <paramref name="parameters"/> (length n) to any
    /// order the activations allow.
    /// </summary>
    public Tensor Forward(Tensor parameters, Tensor inputs)
    {
        CheckShapes(parameters, inputs);
        using var scope = NewDisposeScope();
        var scaled = ScaleInputs(Flat(inputs));
        return ForwardScaled(parameters, scaled).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The exact Jacobian J = ∂H/∂p ∈ ℝ^{ℓd×n} of the outputs at every sample, by the batched path:
    /// per-sample gradients from one forward and one batched reverse sweep, no per-row backward passes.
    /// Row i·ℓ + j holds ∂f_j(xᵢ)/∂p (sample-major, the order of <c>Problem.ResidualMap</c>). The rows are shaped as
    /// <see cref="Forward"/> takes them.
    /// </summary>
    public Tensor Jacobian(Tensor parameters, Tensor inputs)
    {
        CheckShapes(parameters, inputs);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scaled = ScaleInputs(Flat(inputs));
        // When the sweep writes every entry, skip the zero fill: one pass less over ℓd·n doubles.
        var jac = JacobianWritesEveryEntry
            ? empty(inputs.shape[0] * OutputDim, ParameterCount, dtype: float64)
            : zeros(inputs.shape[0] * OutputDim, ParameterCount, dtype: float64);
        AccumulateJacobian(parameters.detach(), scaled, jac);
        return jac.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Whether <see cref="AccumulateJacobian"/> assigns every entry of J (so the buffer need not be
    /// zeroed first); false when it accumulates, as shared parameters do.
    /// </summary>
    protected virtual bool JacobianWritesEveryEntry => false;

    /// <summary>The forward pass on scaled inputs, one flat row of p values per sample (d × p).</summary>
    protected abstract Tensor ForwardScaled(Tensor parameters, Tensor scaledInputs);

    /// <summary>
    /// Writes the per-sample gradients into <paramref name="jacobian"/> (ℓd × n; zero on entry unless <see cref="JacobianWritesEveryEntry"/>),
    /// row i·ℓ + j = ∂f_j(xᵢ)/∂p, for scaled inputs given as flat rows (d × p). Called without autograd.
    /// </summary>
    protected abstract void AccumulateJacobian(Tensor parameters, Tensor scaledInputs, Tensor jacobian);

    /// <summary>Applies <see cref="Scaling"/> (or nothing) to raw inputs.</summary>
    protected Tensor ScaleInputs(Tensor inputs) => Scaling is null ? inputs.alias() : Scaling.Apply(inputs);

    private void CheckShapes(Tensor parameters, Tensor inputs)
    {
        if (parameters.dim() != 1 || parameters.shape[0] != ParameterCount)
        {
            throw new ArgumentException($"parameter vector has shape [{string.Join(",", parameters.shape)}], the network has n = {ParameterCount}");
        }
        if (inputs.dim() < 2 || inputs.shape.Skip(1).Aggregate(1L, (a, b) => a * b) != InputDim)
        {
            throw new ArgumentException($"inputs have shape [{string.Join(",", inputs.shape)}], the network takes {InputDim} inputs per row");
        }
    }

    /// <summary>The rows as d × p (a view where the layout allows): the scaling and the layers read flat rows.</summary>
    private static Tensor Flat(Tensor inputs) => inputs.dim() == 2 ? inputs : inputs.reshape(inputs.shape[0], -1);
}
