using System.Text.Json.Serialization;

namespace LossLandscape.Curvature;

/// <summary>Which end of a symmetric spectrum to compute.</summary>
public enum SpectrumEnd
{
    /// <summary>The k algebraically largest eigenvalues λ₁ ≥ λ₂ ≥ …, reported in decreasing order.</summary>
    Largest,

    /// <summary>The k algebraically smallest eigenvalues (negative curvature first), reported in increasing order.</summary>
    Smallest,

    /// <summary>The k eigenvalues largest in magnitude, reported by decreasing |λ| (in JSON, as on the command line, <c>magnitude</c>).</summary>
    [JsonStringEnumMemberName("magnitude")]
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
