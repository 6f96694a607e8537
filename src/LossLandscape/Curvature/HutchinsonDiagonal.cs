using LossLandscape.Engine;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>Options of <see cref="HutchinsonDiagonal.Estimate"/>.</summary>
/// <param name="Probes">Rademacher probes (one application each); default 100, PyHessian's trace budget (<see cref="TraceEstimate.HutchinsonProbes"/>).</param>
/// <param name="BlockSize">Probes per <see cref="LinearOperator.ApplyMatrix"/> call; default 10, as <see cref="TraceOptions.BlockSize"/>.</param>
/// <param name="Seed">Seed of the probes (System.Random); default 0.</param>
public sealed record DiagonalOptions(int Probes = TraceEstimate.HutchinsonProbes, int BlockSize = 10, int Seed = 0);

/// <summary>A stochastic estimate of a diagonal, entry by entry.</summary>
/// <param name="Diagonal">The estimate of each Aᵢᵢ (n values).</param>
/// <param name="StandardErrors">The standard error of each entry, sᵢ/√N over the N probes (0 where every probe gives the same value).</param>
/// <param name="Probes">N.</param>
/// <param name="Applications">Operator applications used (N).</param>
public sealed record DiagonalEstimate(IReadOnlyList<double> Diagonal, IReadOnlyList<double> StandardErrors, int Probes, long Applications)
{
    /// <summary>The estimate as an operator (<see cref="DiagonalOperator"/>, float64 on the CPU).</summary>
    public DiagonalOperator ToOperator()
    {
        using var scope = NewDisposeScope();
        return new DiagonalOperator(tensor(Diagonal.ToArray(), dtype: ScalarType.Float64));
    }
}

/// <summary>
/// Hutchinson's estimator of a diagonal: diag A = E[z ⊙ Az] for z with independent Rademacher entries (z ⊙ z = 1), estimated
/// entry by entry by the mean of N samples zₘ ⊙ Azₘ with standard error s/√N; Var[(z ⊙ Az)ᵢ] = Σ_{j≠i} A²ᵢⱼ.
/// </summary>
/// <remarks>
/// Bekas, Kokiopoulou &amp; Saad 2007, "An estimator for the diagonal of a matrix", §2 (with Rademacher probes, the division by
/// Σ z ⊙ z is by N); used for the Hessian's diagonal by AdaHessian (Yao et al. 2021) and PyHessian's issue 14.
/// </remarks>
public static class HutchinsonDiagonal
{
    /// <summary>Estimates diag A of the square operator <paramref name="op"/>; the token of <paramref name="limits"/> is checked before each block of probes.</summary>
    /// <exception cref="LandscapeInputException">Fewer than one probe or a block size below one.</exception>
    public static DiagonalEstimate Estimate(LinearOperator op, DiagonalOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= new DiagonalOptions();
        limits ??= RunLimits.Default;
        if (op.Rows != op.Columns)
        {
            throw new ArgumentException($"a diagonal needs a square operator, this one is {op.Rows}×{op.Columns}", nameof(op));
        }
        if (options.Probes < 1 || options.BlockSize < 1)
        {
            throw new LandscapeInputException($"the diagonal estimate needs Probes ≥ 1 and BlockSize ≥ 1, got Probes = {options.Probes}, BlockSize = {options.BlockSize}", nameof(options));
        }
        long n = op.Columns;
        long start = op.Applications;
        var rng = new Random(options.Seed);
        using var scope = NewDisposeScope();
        // Running sums of the samples and their squares, entry by entry.
        var sum = zeros(n, dtype: ScalarType.Float64);
        var squares = zeros(n, dtype: ScalarType.Float64);
        int done = 0;
        while (done < options.Probes)
        {
            limits.ThrowIfCancellationRequested();
            using var blockScope = NewDisposeScope();
            int k = Math.Min(options.BlockSize, options.Probes - done);
            var z = Hutchinson.RademacherBlock(rng, n, k, op);
            var samples = z.mul(op.ApplyMatrix(z)).to_type(ScalarType.Float64).cpu(); // n × k: zₘ ⊙ Azₘ
            sum.PlusInPlace(samples.sum(1));
            squares.PlusInPlace(samples.mul(samples).sum(1));
            done += k;
            limits.Report($"probes {done}/{options.Probes}", (double)done / options.Probes);
        }
        var mean = sum.Over(done);
        // s² = (Σx² − N·x̄²)/(N − 1), clamped at 0 against rounding; the standard error s/√N.
        var errors = done < 2
            ? zeros_like(mean)
            : squares.sub(mean.mul(mean).Times(done)).Over(done - 1).AtLeast(0).Over(done).sqrt();
        return new DiagonalEstimate(mean.data<double>().ToArray(), errors.data<double>().ToArray(), done, op.Applications - start);
    }
}
