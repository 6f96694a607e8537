using LossLandscape.Curvature;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Operators;

/// <summary>
/// A linear map A: ℝ^Columns → ℝ^Rows known only through its action v ↦ Av: the one abstraction of
/// curvature. Hessian, Gauss-Newton, Jacobian and dense matrices implement it; every estimator
/// (<see cref="Lanczos"/>, <see cref="StochasticLanczosQuadrature"/>, <see cref="Hutchinson"/>,
/// <see cref="HutchPlusPlus"/>, <see cref="PowerIteration"/>, <see cref="DenseSpectrum"/>) takes any operator.
/// </summary>
/// <remarks>
/// Modelled on curvlinops' <c>CurvatureLinearOperator</c> (<c>_torch_base.py</c>): a shape, a dtype, a
/// device, whether the map is self-adjoint, and a matrix-vector and matrix-matrix product.
/// Every application is counted in <see cref="Applications"/> (one per column of a block), so estimators
/// can report the number of operator (for the Hessian: Hessian-vector) products they used.
/// </remarks>
public abstract class LinearOperator
{
    private long _applications;

    /// <summary>Sets the shape, dtype, device and symmetry of the operator.</summary>
    /// <param name="rows">The output dimension.</param>
    /// <param name="columns">The input dimension.</param>
    /// <param name="dtype">The dtype of inputs and outputs.</param>
    /// <param name="device">The device of inputs and outputs.</param>
    /// <param name="isSymmetric">Whether A = Aᵀ (then Rows = Columns).</param>
    protected LinearOperator(long rows, long columns, ScalarType dtype, Device device, bool isSymmetric)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        ArgumentNullException.ThrowIfNull(device);
        if (isSymmetric && rows != columns)
        {
            throw new ArgumentException($"a symmetric operator must be square, this one is {rows}×{columns}");
        }
        Rows = rows;
        Columns = columns;
        DType = dtype;
        Device = device;
        IsSymmetric = isSymmetric;
    }

    /// <summary>The output dimension (rows of the matrix).</summary>
    public long Rows { get; }

    /// <summary>The input dimension (columns of the matrix).</summary>
    public long Columns { get; }

    /// <summary>The dtype of inputs and outputs.</summary>
    public ScalarType DType { get; }

    /// <summary>The device of inputs and outputs.</summary>
    public Device Device { get; }

    /// <summary>Whether A = Aᵀ; every estimator of this folder requires it.</summary>
    public bool IsSymmetric { get; }

    /// <summary>How many vectors A has been applied to so far (a block of k columns counts k).</summary>
    public long Applications => Interlocked.Read(ref _applications);

    /// <summary>Av for a vector v of length <see cref="Columns"/>; a new vector of length <see cref="Rows"/>.</summary>
    /// <exception cref="ArgumentException">v is not a vector of length <see cref="Columns"/>.</exception>
    public Tensor Apply(Tensor v)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (v.dim() != 1 || v.shape[0] != Columns)
        {
            throw new ArgumentException($"expected a vector of length {Columns}, got shape [{string.Join(",", v.shape)}]", nameof(v));
        }
        Interlocked.Increment(ref _applications);
        using var scope = NewDisposeScope();
        return ApplyCore(v.to(DType, Device)).MoveToOuterDisposeScope();
    }

    /// <summary>AV for a block V of k columns (Columns × k); a new Rows × k matrix.</summary>
    /// <exception cref="ArgumentException">V is not a matrix with <see cref="Columns"/> rows.</exception>
    public Tensor ApplyMatrix(Tensor block)
    {
        ArgumentNullException.ThrowIfNull(block);
        if (block.dim() != 2 || block.shape[0] != Columns)
        {
            throw new ArgumentException($"expected a {Columns}×k block, got shape [{string.Join(",", block.shape)}]", nameof(block));
        }
        Interlocked.Add(ref _applications, block.shape[1]);
        using var scope = NewDisposeScope();
        if (block.shape[1] == 0)
        {
            return zeros(Rows, 0, dtype: DType, device: Device).MoveToOuterDisposeScope();
        }
        return ApplyMatrixCore(block.to(DType, Device)).MoveToOuterDisposeScope();
    }

    /// <summary>Aᵀ as an operator: this one when <see cref="IsSymmetric"/>.</summary>
    /// <exception cref="NotSupportedException">The operator has no adjoint implemented.</exception>
    public virtual LinearOperator Adjoint() =>
        IsSymmetric ? this : throw new NotSupportedException($"{GetType().Name} has no adjoint");

    /// <summary>
    /// The dense matrix of A, built from <see cref="Columns"/> applications (in blocks of
    /// <paramref name="blockSize"/> unit vectors).
    /// </summary>
    /// <param name="blockSize">Unit vectors per <see cref="ApplyMatrix"/> call.</param>
    /// <param name="limits">The budget of the dense matrix; the token, checked after each block; ("columns j/n", j/n) reported after each block.</param>
    /// <exception cref="MemoryBudgetExceededException">The dense matrix would exceed the budget; the message names the matrix-free alternatives.</exception>
    public Tensor ToDense(int blockSize = 64, RunLimits? limits = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        limits ??= RunLimits.Default;
        CheckDenseBudget(Rows, Columns, DType, limits, $"a dense {Rows}×{Columns} {GetType().Name}");
        using var scope = NewDisposeScope();
        var dense = empty(Rows, Columns, dtype: DType, device: Device);
        limits.Report($"columns 0/{Columns}", 0);
        foreach (var (start, count) in Blocks(Columns, blockSize))
        {
            using var blockScope = NewDisposeScope();
            dense.narrow(1, start, count).copy_(ApplyMatrix(UnitBlock(start, count)));
            limits.Checkpoint($"columns {start + count}/{Columns}", (double)(start + count) / Columns);
        }
        return dense.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// tr A = Σᵢ eᵢᵀAeᵢ exactly, from <see cref="Columns"/> applications in blocks of unit vectors, without
    /// forming the dense matrix (memory O(n·blockSize)). Square operators only.
    /// </summary>
    /// <param name="blockSize">Unit vectors per <see cref="ApplyMatrix"/> call.</param>
    /// <param name="limits">The token, checked after each block; ("columns j/n", j/n) reported after each block.</param>
    public double ExactTrace(int blockSize = 64, RunLimits? limits = null)
    {
        limits ??= RunLimits.Default;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        if (Rows != Columns)
        {
            throw new InvalidOperationException($"the trace needs a square operator, this one is {Rows}×{Columns}");
        }
        double trace = 0;
        limits.Report($"columns 0/{Columns}", 0);
        foreach (var (start, count) in Blocks(Columns, blockSize))
        {
            using var blockScope = NewDisposeScope();
            // eᵢᵀ(AE)ᵢ: the diagonal of the block's rows start … start + count − 1.
            trace += ApplyMatrix(UnitBlock(start, count)).narrow(0, start, count).diagonal().sum().to_type(ScalarType.Float64).item<double>();
            limits.Checkpoint($"columns {start + count}/{Columns}", (double)(start + count) / Columns);
        }
        return trace;
    }

    /// <summary>(first, count) covering 0 … total − 1 in blocks of <paramref name="blockSize"/>.</summary>
    private static IEnumerable<(long Start, long Count)> Blocks(long total, int blockSize)
    {
        for (long start = 0; start < total; start += blockSize)
        {
            yield return (start, Math.Min(blockSize, total - start));
        }
    }

    /// <summary>Columns start … start + count − 1 of the identity, a Columns × count block (in the caller's dispose scope).</summary>
    private Tensor UnitBlock(long start, long count)
    {
        var unit = zeros(Columns, count, dtype: DType, device: Device);
        unit.narrow(0, start, count).copy_(eye(count, dtype: DType, device: Device));
        return unit;
    }

    /// <summary>Av for a vector of length <see cref="Columns"/>, already of the operator's dtype and device.</summary>
    protected abstract Tensor ApplyCore(Tensor v);

    /// <summary>AV for a Columns × k block with k ≥ 1; the default applies <see cref="ApplyCore"/> column by column.</summary>
    protected virtual Tensor ApplyMatrixCore(Tensor block)
    {
        var columns = new Tensor[block.shape[1]];
        for (long j = 0; j < columns.Length; j++)
        {
            columns[j] = ApplyCore(block.select(1, j));
        }
        return stack(columns, 1);
    }

    /// <summary>A + B.</summary>
    public static LinearOperator operator +(LinearOperator left, LinearOperator right) => new SumOperator(left, right);

    /// <summary>A − B = A + (−1)·B.</summary>
    public static LinearOperator operator -(LinearOperator left, LinearOperator right) => new SumOperator(left, new ScaledOperator(-1.0, right));

    /// <summary>−A.</summary>
    public static LinearOperator operator -(LinearOperator operand) => new ScaledOperator(-1.0, operand);

    /// <summary>c·A.</summary>
    public static LinearOperator operator *(double scale, LinearOperator operand) => new ScaledOperator(scale, operand);

    /// <summary>A·c.</summary>
    public static LinearOperator operator *(LinearOperator operand, double scale) => new ScaledOperator(scale, operand);

    /// <summary>
    /// The alternatives to a dense object that does not fit, named in every refusal of this folder.
    /// </summary>
    internal const string MatrixFreeAlternatives =
        "use the matrix-free estimators instead: Lanczos for a few extreme eigenpairs, StochasticLanczosQuadrature for the spectral density, " +
        "Hutchinson or HutchPlusPlus for the trace (or raise the budget)";

    /// <summary>
    /// Throws <see cref="MemoryBudgetExceededException"/> when a dense rows × columns matrix of <paramref name="dtype"/>
    /// would exceed the budget of <paramref name="limits"/> (<see cref="RunLimits.Require"/>), naming the matrix-free alternatives.
    /// </summary>
    internal static void CheckDenseBudget(long rows, long columns, ScalarType dtype, RunLimits limits, string what)
    {
        double bytes = (double)rows * columns * ElementSize(dtype);
        limits.Require(what, bytes >= long.MaxValue ? long.MaxValue : (long)bytes, MatrixFreeAlternatives);
    }

    private static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => 4,
    };
}
