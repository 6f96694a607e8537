using LossLandscape.Operators;
using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Curvature;

/// <summary>
/// Hutch++: tr(A) = tr(QᵀAQ) + tr((I − QQᵀ)A(I − QQᵀ)), the first term exact on a sketch Q = orth(AS) of the top of the
/// spectrum, the second by Hutchinson on the deflated remainder; m applications reach relative error ε with
/// m = O(1/ε) for positive semi-definite A, against O(1/ε²) for Hutchinson.
/// </summary>
/// <remarks>
/// Meyer, Musco, Musco &amp; Woodruff 2021, "Hutch++: Optimal stochastic trace estimation" (SOSA), Algorithm 1: with
/// S, G ∈ {±1}^{n×m/3}, Q = qr(AS), tr ≈ tr(QᵀAQ) + (3/m) tr(Gᵀ(I − QQᵀ)A(I − QQᵀ)G): m/3 applications each for AS,
/// AQ and the deflated probes. The standard error is that of the m/3 deflated samples.
/// </remarks>
public static class HutchPlusPlus
{
    /// <summary>Estimates tr(A) of the square operator <paramref name="op"/> with <see cref="TraceOptions.MaxProbes"/> applications in all; the token of <paramref name="limits"/> is checked before each block of them.</summary>
    public static TraceResult Trace(LinearOperator op, TraceOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        options ??= TraceEstimate.DefaultOptions(TraceMethod.HutchPlusPlus);
        limits ??= RunLimits.Default;
        Hutchinson.Check(op, options);
        if (options.MaxProbes < TraceEstimate.HutchPlusPlusMinimumProbes)
        {
            throw new LandscapeInputException(FormattableString.Invariant($"Hutch++ needs a budget of at least 3 applications, got {options.MaxProbes}"), nameof(options));
        }
        long n = op.Columns;
        long startApplications = op.Applications;
        using var scope = NewDisposeScope();
        var rng = new Random(options.Seed);
        int third = options.MaxProbes / 3;
        int sketch = (int)Math.Min(third, n);
        var s = Hutchinson.RademacherBlock(rng, n, sketch, op);
        limits.ThrowIfCancellationRequested();
        var (q, _) = linalg.qr(op.ApplyMatrix(s)); // reduced QR: Q is n × sketch, orthonormal.
        limits.ThrowIfCancellationRequested();
        double lowRank = q.mul(op.ApplyMatrix(q)).sum().item<double>(); // tr(QᵀAQ)
        var g = Hutchinson.RademacherBlock(rng, n, third, op);
        // (I − QQᵀ)G, then Gᵀ(I − QQᵀ)A(I − QQᵀ)G column by column.
        var deflated = g - q.mm(q.t().mm(g));
        limits.ThrowIfCancellationRequested();
        var projected = op.ApplyMatrix(deflated);
        projected = projected - q.mm(q.t().mm(projected));
        var samples = deflated.mul(projected).sum(0L).to_type(ScalarType.Float64).data<double>().ToArray();
        var (mean, error) = StochasticLanczosQuadrature.MeanAndStandardError(samples);
        double trace = lowRank + mean;
        var status = ConvergenceTest.Evaluate(error, ConvergenceTest.IsBreakdown(lowRank) ? double.NaN : trace, options.Tolerance);
        return new TraceResult(trace, error, samples, lowRank, op.Applications - startApplications, status);
    }
}
