using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// A matrix held in memory as an operator: Av = A·v. For small problems, tests, and the
/// spectra of known matrices.
/// </summary>
public sealed class DenseOperator : LinearOperator, IDisposable
{
    /// <summary>
    /// The relative asymmetry max|A − Aᵀ| ≤ tol·max|A| below which a square matrix counts as symmetric
    /// when the caller does not say: 1e−12, a few thousand ε (ε ≈ 2.2e−16), the spread of two float64
    /// evaluations of the same entry in different orders (a Hessian from Hessian-vector products, say).
    /// </summary>
    public const double SymmetryTolerance = 1e-12;

    private readonly Tensor _matrix;

    /// <summary>Wraps a copy of <paramref name="matrix"/> (2-D).</summary>
    /// <param name="matrix">The matrix; copied, never disposed.</param>
    /// <param name="isSymmetric">Whether A = Aᵀ; default: decided with <see cref="SymmetryTolerance"/>.</param>
    public DenseOperator(Tensor matrix, bool? isSymmetric = null)
        : base(Shape(matrix).Rows, Shape(matrix).Columns, matrix.dtype, matrix.device, isSymmetric ?? LooksSymmetric(matrix))
    {
        _matrix = matrix.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>The matrix (owned by the operator; do not dispose).</summary>
    public Tensor Matrix => _matrix;

    /// <inheritdoc/>
    public override LinearOperator Adjoint() => IsSymmetric ? this : new DenseOperator(_matrix.t(), false);

    /// <inheritdoc/>
    public void Dispose() => _matrix.Dispose();

    /// <inheritdoc/>
    protected override Tensor ApplyCore(Tensor v) => _matrix.mv(v);

    /// <inheritdoc/>
    protected override Tensor ApplyMatrixCore(Tensor block) => _matrix.mm(block);

    private static (long Rows, long Columns) Shape(Tensor matrix)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        if (matrix.dim() != 2)
        {
            throw new ArgumentException($"a dense operator needs a matrix, got shape [{string.Join(",", matrix.shape)}]", nameof(matrix));
        }
        return (matrix.shape[0], matrix.shape[1]);
    }

    private static bool LooksSymmetric(Tensor matrix)
    {
        if (matrix.shape[0] != matrix.shape[1])
        {
            return false;
        }
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        double scale = matrix.abs().max().item<double>();
        return (matrix - matrix.t()).abs().max().item<double>() <= SymmetryTolerance * scale;
    }
}
