using LossLandscape.Curvature;
using static TorchSharp.torch;

namespace LossLandscape.Cluster;

/// <summary>
/// ∇²L as a <see cref="LinearOperator"/> whose products are summed over the shards of a <see cref="ClusterSession"/>:
/// ∇²L V = Σ_s ∇²L_s V, each shard by Pearlmutter's product on its rows (<see cref="HessianOperator"/>). Every estimator
/// (Lanczos, SLQ, Hutchinson, Hutch++) works on it unchanged; the recurrence stays on the driver.
/// </summary>
public sealed class DistributedHessianOperator : LinearOperator
{
    /// <summary>The Hessian of the session's loss at its current point.</summary>
    public DistributedHessianOperator(ClusterSession session)
        : base((session ?? throw new ArgumentNullException(nameof(session))).ParameterCount, session.ParameterCount, ScalarType.Float64, CPU, isSymmetric: true)
        => Session = session;

    /// <summary>The session that answers the products.</summary>
    public ClusterSession Session { get; }

    /// <inheritdoc />
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc />
    protected override Tensor ApplyMatrixCore(Tensor block) => Session.SumBlock(ShardQuantity.Hessian, block);
}

/// <summary>
/// The generalised Gauss–Newton matrix G = Jᵀ diag(ℓ″(H)) J (2JᵀJ for the squared loss), summed over shards:
/// G V = Σ_s J_sᵀ ℓ″ J_s V (<see cref="GaussNewtonOperator"/> on each shard).
/// </summary>
public sealed class DistributedGaussNewtonOperator : LinearOperator
{
    /// <summary>The Gauss–Newton matrix of the session's loss at its current point.</summary>
    public DistributedGaussNewtonOperator(ClusterSession session)
        : base((session ?? throw new ArgumentNullException(nameof(session))).ParameterCount, session.ParameterCount, ScalarType.Float64, CPU, isSymmetric: true)
        => Session = session;

    /// <summary>The session that answers the products.</summary>
    public ClusterSession Session { get; }

    /// <inheritdoc />
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc />
    protected override Tensor ApplyMatrixCore(Tensor block) => Session.SumBlock(ShardQuantity.GaussNewton, block);
}

/// <summary>J = ∂H/∂p (ℓd × n) with JV the shards' blocks J_s V stacked in row order; its adjoint is <see cref="DistributedJacobianTransposeOperator"/>.</summary>
public sealed class DistributedJacobianOperator : LinearOperator
{
    /// <summary>The Jacobian of the session's residual map at its current point.</summary>
    public DistributedJacobianOperator(ClusterSession session)
        : base((session ?? throw new ArgumentNullException(nameof(session))).Constraints, session.ParameterCount, ScalarType.Float64, CPU, isSymmetric: false)
        => Session = session;

    /// <summary>The session that answers the products.</summary>
    public ClusterSession Session { get; }

    /// <inheritdoc />
    public override LinearOperator Adjoint() => new DistributedJacobianTransposeOperator(Session);

    /// <inheritdoc />
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc />
    protected override Tensor ApplyMatrixCore(Tensor block) => Session.JacobianBlock(block);
}

/// <summary>Jᵀ (n × ℓd): JᵀW = Σ_s J_sᵀ W_s, each shard sent only its own rows W_s of W.</summary>
public sealed class DistributedJacobianTransposeOperator : LinearOperator
{
    /// <summary>The transposed Jacobian of the session's residual map at its current point.</summary>
    public DistributedJacobianTransposeOperator(ClusterSession session)
        : base((session ?? throw new ArgumentNullException(nameof(session))).ParameterCount, session.Constraints, ScalarType.Float64, CPU, isSymmetric: false)
        => Session = session;

    /// <summary>The session that answers the products.</summary>
    public ClusterSession Session { get; }

    /// <inheritdoc />
    public override LinearOperator Adjoint() => new DistributedJacobianOperator(Session);

    /// <inheritdoc />
    protected override Tensor ApplyCore(Tensor v) => ApplyMatrixCore(v.unsqueeze(1)).squeeze(1);

    /// <inheritdoc />
    protected override Tensor ApplyMatrixCore(Tensor block) => Session.JacobianTransposeBlock(block);
}
