using System.Text.Json.Serialization;
using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>Options of <see cref="Hutchinson.Trace"/> and <see cref="HutchPlusPlus.Trace"/>.</summary>
/// <param name="MaxProbes">
/// The budget: for Hutchinson the most probes (one application each), default 100 (PyHessian's <c>trace(maxIter=100)</c>);
/// for Hutch++ the total number of applications m, split into thirds (default 99, the largest multiple of 3 within that budget).
/// </param>
/// <param name="Tolerance">
/// Stop (Hutchinson) or report convergence (Hutch++) when the standard error ≤ tol·|estimate|; default 1e−3
/// (PyHessian's <c>tol=1e-3</c>, there applied to the change of the running mean).
/// </param>
/// <param name="MinProbes">Hutchinson does not stop before this many probes, so the standard error means something; default 10.</param>
/// <param name="BlockSize">Probes applied per <see cref="LinearOperator.ApplyMatrix"/> call (shares one forward and backward pass per batch for the Hessian); default 10.</param>
/// <param name="Seed">Seed of the Rademacher probes; default 0.</param>
public sealed record TraceOptions(
    int MaxProbes = 100,
    double Tolerance = 1e-3,
    int MinProbes = 10,
    int BlockSize = 10,
    int Seed = 0);

/// <summary>A stochastic trace estimate.</summary>
/// <param name="Trace">The estimate of tr(A).</param>
/// <param name="StandardError">Its standard error, s/√N over the N stochastic samples (the deterministic part of Hutch++ adds none).</param>
/// <param name="Samples">The stochastic samples zᵀAz (Hutchinson) or zᵀ(I − QQᵀ)A(I − QQᵀ)z (Hutch++).</param>
/// <param name="LowRankPart">tr(QᵀAQ) of Hutch++'s sketch; 0 for Hutchinson.</param>
/// <param name="Applications">Operator applications (Hessian-vector products; in JSON, <c>hessianVectorProducts</c>).</param>
/// <param name="Status">Converged when StandardError ≤ Tolerance·|Trace|, Breakdown when a sample is NaN, else StoppedWithoutConvergence.</param>
public sealed record TraceResult(
    double Trace,
    double StandardError,
    [property: JsonIgnore] IReadOnlyList<double> Samples,
    double LowRankPart,
    [property: JsonPropertyName("hessianVectorProducts")] long Applications,
    SolverStatus Status)
{
    /// <summary>The number of <see cref="Samples"/> (in JSON, <c>samples</c>).</summary>
    [JsonPropertyName("samples")]
    public int SampleCount => Samples.Count;
}

/// <summary>
/// Hutchinson's trace estimator: tr(A) = E[zᵀAz] for z with independent Rademacher entries, estimated by the mean of N
/// samples with standard error s/√N; Var[zᵀAz] = 2(‖A‖²_F − Σ_i A²_ii).
/// </summary>
/// <remarks>
/// Hutchinson 1990, "A stochastic estimator of the trace of the influence matrix for Laplacian smoothing splines";
/// Avron &amp; Toledo 2011 for the variance. The probes are applied in blocks, and the iteration stops once at least
/// MinProbes samples are in and the standard error is within tolerance.
/// </remarks>
public static class Hutchinson
{
    /// <summary>Estimates tr(A) of the square operator <paramref name="op"/>; the token of <paramref name="limits"/> is checked before each block of probes.</summary>
    public static TraceResult Trace(LinearOperator op, TraceOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= new TraceOptions();
        limits ??= RunLimits.Default;
        Check(op, options);
        long n = op.Columns;
        long startApplications = op.Applications;
        var rng = new Random(options.Seed);
        var samples = new List<double>();
        var status = SolverStatus.StoppedWithoutConvergence;
        while (samples.Count < options.MaxProbes)
        {
            limits.ThrowIfCancellationRequested();
            using var blockScope = NewDisposeScope();
            int k = Math.Min(options.BlockSize, options.MaxProbes - samples.Count);
            var z = RademacherBlock(rng, n, k, op);
            // zᵢᵀAzᵢ, column by column.
            samples.AddRange(z.mul(op.ApplyMatrix(z)).sum(0L).to_type(ScalarType.Float64).data<double>().ToArray());
            var (mean, error) = StochasticLanczosQuadrature.MeanAndStandardError(samples);
            // Standard error ≤ tol·|estimate|; a NaN sample (an operator that produced NaN) is a breakdown.
            var test = ConvergenceTest.Evaluate(error, mean, options.Tolerance);
            if (test == SolverStatus.Breakdown || (samples.Count >= options.MinProbes && test == SolverStatus.Converged))
            {
                status = test;
                break;
            }
        }
        var (trace, standardError) = StochasticLanczosQuadrature.MeanAndStandardError(samples);
        return new TraceResult(trace, standardError, samples, 0, op.Applications - startApplications, status);
    }

    internal static void Check(LinearOperator op, TraceOptions options)
    {
        if (op.Rows != op.Columns)
        {
            throw new ArgumentException($"the trace needs a square operator, this one is {op.Rows}×{op.Columns}", nameof(op));
        }
        if (options.MaxProbes < 1 || options.BlockSize < 1 || options.MinProbes < 1 || !(options.Tolerance >= 0))
        {
            throw new LandscapeInputException(FormattableString.Invariant($"trace estimation needs MaxProbes, MinProbes, BlockSize ≥ 1 and Tolerance ≥ 0, got MaxProbes = {options.MaxProbes}, MinProbes = {options.MinProbes}, BlockSize = {options.BlockSize}, Tolerance = {options.Tolerance}"), nameof(options));
        }
    }

    /// <summary>An n × k block of Rademacher columns, in the operator's dtype and device.</summary>
    internal static Tensor RademacherBlock(Random rng, long n, int k, LinearOperator op)
    {
        var columns = new double[n, k];
        for (int j = 0; j < k; j++)
        {
            var v = Probes.Rademacher(rng, n);
            for (long i = 0; i < n; i++)
            {
                columns[i, j] = v[i];
            }
        }
        return tensor(columns, dtype: op.DType, device: op.Device);
    }
}
