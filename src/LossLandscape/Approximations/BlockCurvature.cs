using LossLandscape.Engine;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Approximations;

/// <summary>
/// One block's curvature in an approximation: its product on the block's rows of a block of columns, (A + λI)⁻¹ and
/// log det(A + λI) from its own structure.
/// </summary>
internal abstract class BlockCurvature : IDisposable
{
    /// <summary>A·V for the block's rows V (count × k).</summary>
    public abstract Tensor Apply(Tensor v);

    /// <summary>(A + λI)⁻¹V for the block's rows V (count × k).</summary>
    public abstract Tensor Solve(Tensor v, double damping);

    /// <summary>log det(A + λI).</summary>
    public abstract double LogDeterminant(double damping);

    /// <inheritdoc/>
    public abstract void Dispose();
}

/// <summary>
/// A layer's block in the Kronecker layout: its weight W (out × f, row-major in p) and bias b (out) seen as one matrix
/// M = [W | b] (out × (f + 1)), whose row-major vectorisation a Kronecker product B ⊗ A acts on as M ↦ B M A (A, B symmetric).
/// </summary>
internal static class KroneckerLayout
{
    /// <summary>The block's rows V (count × k) as k matrices [W | b], k × out × (f + 1).</summary>
    public static Tensor ToGrid(Tensor v, ParameterBlock block)
    {
        long k = v.shape[1];
        var w = v.narrow(0, 0, block.WeightCount).t().reshape(k, block.Out, block.FanIn);
        var b = v.narrow(0, block.WeightCount, block.Out).t().reshape(k, block.Out, 1);
        return cat([w, b], 2);
    }

    /// <summary>The inverse of <see cref="ToGrid"/>: k × out × (f + 1) back to the block's rows, count × k.</summary>
    public static Tensor FromGrid(Tensor grid, ParameterBlock block)
    {
        long k = grid.shape[0];
        var w = grid.narrow(2, 0, block.FanIn).reshape(k, block.WeightCount).t();
        var b = grid.select(2, block.FanIn).t();
        return cat([w, b], 0);
    }
}

/// <summary>
/// B ⊗ A on a Kronecker block (<see cref="KroneckerLayout"/>), with A = U_A diag(α) U_Aᵀ and B = U_B diag(β) U_Bᵀ decomposed on
/// first use: (B ⊗ A + λI)⁻¹ = (U_B ⊗ U_A) diag(1/(βₒαⱼ + λ)) (U_B ⊗ U_A)ᵀ and log det(B ⊗ A + λI) = Σₒⱼ log(βₒαⱼ + λ).
/// </summary>
internal sealed class KroneckerBlock(ParameterBlock block, Tensor inputFactor, Tensor outputFactor) : BlockCurvature
{
    private (Tensor Alpha, Tensor InputBasis, Tensor Beta, Tensor OutputBasis)? _eigen;

    public ParameterBlock Block { get; } = block;

    /// <summary>A, (f + 1) × (f + 1).</summary>
    public Tensor InputFactor { get; } = inputFactor;

    /// <summary>B, out × out.</summary>
    public Tensor OutputFactor { get; } = outputFactor;

    /// <summary>(α, U_A, β, U_B), computed once by LAPACK's symmetric eigensolver.</summary>
    public (Tensor Alpha, Tensor InputBasis, Tensor Beta, Tensor OutputBasis) Eigen
    {
        get
        {
            if (_eigen is null)
            {
                using var scope = NewDisposeScope();
                var (alpha, ua) = linalg.eigh(InputFactor);
                var (beta, ub) = linalg.eigh(OutputFactor);
                _eigen = (alpha.DetachFromDisposeScope(), ua.DetachFromDisposeScope(), beta.DetachFromDisposeScope(), ub.DetachFromDisposeScope());
            }
            return _eigen.Value;
        }
    }

    /// <inheritdoc/>
    public override Tensor Apply(Tensor v)
    {
        using var scope = NewDisposeScope();
        var grid = KroneckerLayout.ToGrid(v, Block);
        return KroneckerLayout.FromGrid(OutputFactor.matmul(grid).matmul(InputFactor), Block).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override Tensor Solve(Tensor v, double damping)
    {
        using var scope = NewDisposeScope();
        var (alpha, ua, beta, ub) = Eigen;
        var shifted = beta.unsqueeze(1).mul(alpha.unsqueeze(0)).Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, $"the Kronecker block of {Block.Name}");
        var rotated = ub.t().matmul(KroneckerLayout.ToGrid(v, Block)).matmul(ua);
        return KroneckerLayout.FromGrid(ub.matmul(rotated.div(shifted)).matmul(ua.t()), Block).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double LogDeterminant(double damping)
    {
        using var scope = NewDisposeScope();
        var (alpha, _, beta, _) = Eigen;
        var shifted = beta.unsqueeze(1).mul(alpha.unsqueeze(0)).Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, $"the Kronecker block of {Block.Name}");
        return shifted.log().sum().item<double>();
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        InputFactor.Dispose();
        OutputFactor.Dispose();
        if (_eigen is { } e)
        {
            e.Alpha.Dispose();
            e.InputBasis.Dispose();
            e.Beta.Dispose();
            e.OutputBasis.Dispose();
        }
    }
}

/// <summary>
/// EKFAC's block: the Kronecker eigenbasis Q = U_B ⊗ U_A with eigenvalues s (out × (f + 1)) of its own, Q diag(s) Qᵀ, so
/// (· + λI)⁻¹ divides by s + λ in the basis and log det sums log(s + λ).
/// </summary>
internal sealed class EigenbasisBlock(ParameterBlock block, Tensor inputBasis, Tensor outputBasis, Tensor eigenvalues) : BlockCurvature
{
    public ParameterBlock Block { get; } = block;

    /// <summary>U_A, (f + 1) × (f + 1).</summary>
    public Tensor InputBasis { get; } = inputBasis;

    /// <summary>U_B, out × out.</summary>
    public Tensor OutputBasis { get; } = outputBasis;

    /// <summary>s, out × (f + 1): s[o, j] the eigenvalue of the basis vector U_B[:, o] ⊗ U_A[:, j].</summary>
    public Tensor Eigenvalues { get; } = eigenvalues;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor v) => Rotated(v, s => s.mul(Eigenvalues));

    /// <inheritdoc/>
    public override Tensor Solve(Tensor v, double damping)
    {
        using var scope = NewDisposeScope();
        var shifted = Eigenvalues.Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, $"the EKFAC block of {Block.Name}");
        return Rotated(v, s => s.div(shifted)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double LogDeterminant(double damping)
    {
        using var scope = NewDisposeScope();
        var shifted = Eigenvalues.Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, $"the EKFAC block of {Block.Name}");
        return shifted.log().sum().item<double>();
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        InputBasis.Dispose();
        OutputBasis.Dispose();
        Eigenvalues.Dispose();
    }

    /// <summary>Q f(QᵀV) with f applied to the rotated grid: U_B f(U_Bᵀ M U_A) U_Aᵀ.</summary>
    private Tensor Rotated(Tensor v, Func<Tensor, Tensor> scale)
    {
        using var scope = NewDisposeScope();
        var rotated = OutputBasis.t().matmul(KroneckerLayout.ToGrid(v, Block)).matmul(InputBasis);
        return KroneckerLayout.FromGrid(OutputBasis.matmul(scale(rotated)).matmul(InputBasis.t()), Block).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A block held as a dense symmetric matrix M (count × count), decomposed on first use for (M + λI)⁻¹ and log det(M + λI):
/// the exact Gauss–Newton block of a layer without Kronecker structure (batch norm), and the blocks of the exact block diagonals.
/// </summary>
internal sealed class DenseBlock(Tensor matrix) : BlockCurvature
{
    private (Tensor Values, Tensor Vectors)? _eigen;

    /// <summary>M.</summary>
    public Tensor Matrix { get; } = matrix;

    /// <inheritdoc/>
    public override Tensor Apply(Tensor v) => Matrix.mm(v);

    /// <inheritdoc/>
    public override Tensor Solve(Tensor v, double damping)
    {
        using var scope = NewDisposeScope();
        var (values, vectors) = Eigen();
        var shifted = values.Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, "the dense block");
        return vectors.mm(vectors.t().mm(v).div(shifted.unsqueeze(1))).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double LogDeterminant(double damping)
    {
        using var scope = NewDisposeScope();
        var shifted = Eigen().Values.Plus(damping);
        DampedInverse.RequirePositive(shifted, damping, "the dense block");
        return shifted.log().sum().item<double>();
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        Matrix.Dispose();
        if (_eigen is { } e)
        {
            e.Values.Dispose();
            e.Vectors.Dispose();
        }
    }

    private (Tensor Values, Tensor Vectors) Eigen()
    {
        if (_eigen is null)
        {
            using var scope = NewDisposeScope();
            // (M + Mᵀ)/2: a matrix summed from products is symmetric only up to rounding.
            var (values, vectors) = linalg.eigh(Matrix.Plus(Matrix.t()).Over(2));
            _eigen = (values.DetachFromDisposeScope(), vectors.DetachFromDisposeScope());
        }
        return _eigen.Value;
    }
}
