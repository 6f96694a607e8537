using LossLandscape.Operators;
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
    /// <param name="limits">The budget of the probe blocks (<see cref="RequiredBytes"/>); the token; the columns done by the exact trace reported.</param>
    /// <exception cref="MemoryBudgetExceededException">The probe blocks exceed the budget.</exception>
    public static TraceResult Compute(LinearOperator op, TraceMethod method, TraceOptions? options = null, RunLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(op);
        limits ??= RunLimits.Default;
        limits.Require($"the {MethodName(method)} trace's probe blocks ({ProbeBlockCopies} × {op.Columns} × {BlockColumns(method, options)} numbers)",
            RequiredBytes(op.Columns, method, options), "use fewer probes, or a smaller network or data set", BudgetRemedy.Probes | BudgetRemedy.Rows);
        return method switch
        {
            TraceMethod.Hutchinson => Hutchinson.Trace(op, options, limits),
            TraceMethod.HutchPlusPlus => HutchPlusPlus.Trace(op, options, limits),
            TraceMethod.Exact => ExactTrace.Compute(op, ExactBlockSize, limits),
            _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown trace method"),
        };
    }

    /// <summary>Hutchinson's default budget of probes: 100, PyHessian's <c>trace(maxIter=100)</c> (<see cref="TraceOptions.MaxProbes"/>).</summary>
    public const int HutchinsonProbes = 100;

    /// <summary>Hutch++'s default budget: 99, the largest multiple of 3 within Hutchinson's 100 (a third sketches, a third is multiplied, a third estimates the rest).</summary>
    public const int HutchPlusPlusProbes = 99;

    /// <summary>Hutch++'s least budget: 3, one product for each of its three parts.</summary>
    public const int HutchPlusPlusMinimumProbes = 3;

    /// <summary>The options a stochastic method takes when given none: its default budget, PyHessian's tolerance 1e−3, seed 0.</summary>
    public static TraceOptions DefaultOptions(TraceMethod method) =>
        new(method == TraceMethod.HutchPlusPlus ? HutchPlusPlusProbes : HutchinsonProbes);

    /// <summary>Unit vectors per application of the exact trace (<see cref="ExactTrace.Compute"/>'s default block).</summary>
    public const int ExactBlockSize = 64;

    /// <summary>
    /// n × block matrices live at once: the probes, their products, and Hutch++'s orthonormal sketch Q with AQ. A count of
    /// what the three estimators hold, rounded up, not a measurement; the autograd graph of one product comes on top.
    /// </summary>
    public const int ProbeBlockCopies = 4;

    /// <summary>
    /// The bytes of the probe blocks of <paramref name="method"/> on an operator of <paramref name="n"/> columns:
    /// 8·<see cref="ProbeBlockCopies"/>·n·block, block = 64 (exact), the probe block (Hutchinson) or the sketch (Hutch++,
    /// a third of the probes); saturating.
    /// </summary>
    public static long RequiredBytes(long n, TraceMethod method, TraceOptions? options = null)
    {
        double bytes = (double)sizeof(double) * ProbeBlockCopies * n * BlockColumns(method, options);
        return bytes >= long.MaxValue ? long.MaxValue : (long)bytes;
    }

    private static string MethodName(TraceMethod method) => method switch
    {
        TraceMethod.Exact => "exact",
        TraceMethod.Hutchinson => "Hutchinson",
        _ => "Hutch++",
    };

    private static int BlockColumns(TraceMethod method, TraceOptions? options)
    {
        var o = options ?? new TraceOptions();
        return method switch
        {
            TraceMethod.Exact => ExactBlockSize,
            TraceMethod.Hutchinson => Math.Max(1, o.BlockSize),
            _ => Math.Max(1, o.MaxProbes / 3),
        };
    }
}
