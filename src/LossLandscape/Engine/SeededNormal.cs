namespace LossLandscape.Engine;

/// <summary>
/// Standard normal draws from <see cref="Random"/>, so that seeded results do not depend on
/// libtorch's generator or its version.
/// </summary>
internal static class SeededNormal
{
    /// <summary>One N(0, 1) draw by Box–Muller: √(−2 ln u₁)·cos(2π u₂), u₁ ∈ (0, 1].</summary>
    public static double Next(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        double u1 = 1.0 - rng.NextDouble();
        double u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }

    /// <summary><paramref name="count"/> independent N(0, 1) draws.</summary>
    public static double[] Vector(Random rng, int count)
    {
        var v = new double[count];
        for (int i = 0; i < count; i++)
        {
            v[i] = Next(rng);
        }
        return v;
    }
}
