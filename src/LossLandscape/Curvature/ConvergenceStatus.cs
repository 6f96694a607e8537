namespace LossLandscape.Curvature;

/// <summary>How an iterative estimator stopped (Math.NET's <c>IterationStatus</c>, reduced to three outcomes).</summary>
public enum ConvergenceStatus
{
    /// <summary>The stopping rule of the options was met.</summary>
    Converged,

    /// <summary>The iteration or probe budget ran out before the stopping rule was met; the result is the last iterate.</summary>
    StoppedWithoutConvergence,

    /// <summary>
    /// The Krylov space became invariant and could not (or was not allowed to) be extended: the values reported are
    /// exact eigenvalues of the operator on that subspace (residuals say so), but eigenvalues outside it may be missing.
    /// </summary>
    Breakdown,
}

/// <summary>Which end of a symmetric spectrum to compute.</summary>
public enum SpectrumEnd
{
    /// <summary>The k algebraically largest eigenvalues λ₁ ≥ λ₂ ≥ …, reported in decreasing order.</summary>
    Largest,

    /// <summary>The k algebraically smallest eigenvalues (negative curvature first), reported in increasing order.</summary>
    Smallest,

    /// <summary>The k eigenvalues largest in magnitude, reported by decreasing |λ|.</summary>
    LargestMagnitude,
}

/// <summary>Selection and ordering of eigenvalues by <see cref="SpectrumEnd"/>.</summary>
internal static class SpectrumOrder
{
    /// <summary>The indices of the <paramref name="k"/> values wanted, in the order they are reported.</summary>
    public static int[] Select(IReadOnlyList<double> values, SpectrumEnd which, int k)
    {
        var indices = Enumerable.Range(0, values.Count);
        var ordered = which switch
        {
            SpectrumEnd.Largest => indices.OrderByDescending(i => values[i]),
            SpectrumEnd.Smallest => indices.OrderBy(i => values[i]),
            SpectrumEnd.LargestMagnitude => indices.OrderByDescending(i => Math.Abs(values[i])).ThenByDescending(i => values[i]),
            _ => throw new ArgumentOutOfRangeException(nameof(which), which, "unknown spectrum end"),
        };
        return ordered.Take(Math.Min(k, values.Count)).ToArray();
    }
}

/// <summary>Seeded random probe vectors, drawn with <see cref="Random"/> so results do not depend on libtorch's generator.</summary>
internal static class Probes
{
    /// <summary>A vector of n independent N(0, 1) entries.</summary>
    public static double[] Gaussian(Random rng, long n) => Engine.SeededNormal.Vector(rng, checked((int)n));

    /// <summary>A vector of n independent Rademacher (±1 with probability ½) entries.</summary>
    public static double[] Rademacher(Random rng, long n)
    {
        var v = new double[checked((int)n)];
        for (int i = 0; i < v.Length; i++)
        {
            v[i] = rng.Next(2) == 0 ? -1.0 : 1.0;
        }
        return v;
    }
}
