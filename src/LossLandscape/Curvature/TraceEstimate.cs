using LossLandscape.Engine;

namespace LossLandscape.Curvature;

/// <summary>How <see cref="TraceEstimate.Compute"/> computes tr A.</summary>
public enum TraceMethod
{
    /// <summary>Hutch++ (Meyer, Musco, Musco &amp; Woodruff 2021), <see cref="HutchPlusPlus.Trace"/>.</summary>
    HutchPlusPlus,

    /// <summary>Hutchinson's estimator (1990) with a standard error, <see cref="Hutchinson.Trace"/>.</summary>
    Hutchinson,

    /// <summary>Σ eᵢᵀAeᵢ from n products, <see cref="ExactTrace.Compute"/>.</summary>
    Exact,
}

/// <summary>The one entry point for tr A by any of the three methods; <c>landscape trace</c> and the facade both call it.</summary>
public static class TraceEstimate
{
    /// <summary>tr A of the square operator <paramref name="op"/> by <paramref name="method"/>.</summary>
    /// <param name="op">A square operator (∇²L or 2JᵀJ, <see cref="CurvatureOperators.Create"/>).</param>
    /// <param name="method">Hutch++, Hutchinson or exact.</param>
    /// <param name="options">
    /// Probe budget, tolerance and seed of the stochastic methods; default null: each estimator's own default (Hutchinson
    /// 100 probes, PyHessian; Hutch++ 99 products). Ignored by <see cref="TraceMethod.Exact"/>.
    /// </param>
    /// <param name="progress">Receives the columns done by the exact trace.</param>
    public static TraceResult Compute(LinearOperator op, TraceMethod method, TraceOptions? options = null, IProgress<ProgressReport>? progress = null) => method switch
    {
        TraceMethod.Hutchinson => Hutchinson.Trace(op, options),
        TraceMethod.HutchPlusPlus => HutchPlusPlus.Trace(op, options),
        TraceMethod.Exact => ExactTrace.Compute(op, progress: progress),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown trace method"),
    };
}
