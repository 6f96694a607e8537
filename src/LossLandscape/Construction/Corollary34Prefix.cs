using LossLandscape.Models;
using LossLandscape.Models.Activations;

namespace LossLandscape.Construction;

/// <summary>
/// Corollary 3.4's depth prefix: with T hidden layers, the first T − 1 carry the scalar sᵢ = a·xᵢ through one unit
/// each, σ(w·u + b), into the last hidden layer, where Lemma 3.3's triangular system is built on the carried scalars.
/// Each (w, b) maps the current scalars into a window of σ's argument where σ is increasing, so the order and the
/// distinctness of the scalars survive (σ is rectified, hence strictly increasing on the positive half-line).
/// </summary>
internal static class Corollary34Prefix
{
    /// <summary>
    /// The windows [from, to] of σ's argument tried for each prefix layer: (0.1, 1.1) just above the kink, where
    /// smooLU-like σ bend most, (1, 3) across the bend, and (5, 15) on the nearly linear part. Chosen to span σ's
    /// regimes; the window that shrinks the worst relative gap least is kept (for ReLU all three are exact copies).
    /// </summary>
    public static readonly (double From, double To)[] Windows = [(0.1, 1.1), (1.0, 3.0), (5.0, 15.0)];

    /// <summary>The carried scalars and the (weight, bias) of each prefix layer.</summary>
    public sealed record Prefix(double[] Scalars, (double Weight, double Bias)[] Layers);

    /// <summary>
    /// Carries the projections <paramref name="s"/> through <paramref name="layers"/> one-unit layers, each mapped onto
    /// the window of <see cref="Windows"/> that preserves the worst relative gap best (measured).
    /// </summary>
    public static Prefix Carry(double[] s, Activation sigma, int layers)
    {
        var layerMaps = new List<(double, double)>();
        var u = s;
        for (int k = 0; k < layers; k++)
        {
            double lo = u.Min(), hi = u.Max();
            double[]? bestU = null;
            (double, double) bestMap = (1, 0);
            double bestShrink = -1;
            foreach (var (from, to) in Windows)
            {
                double w = hi > lo ? (to - from) / (hi - lo) : 1.0;
                double b = from - w * lo;
                var next = u.Select(v => sigma.Value(w * v + b)).ToArray();
                // Worst relative gap preservation: min over neighbours of (gap_out/range_out)/(gap_in/range_in).
                var order = Enumerable.Range(0, u.Length).OrderBy(i => u[i]).ToArray();
                double rangeOut = next.Max() - next.Min(), rangeIn = hi - lo;
                double shrink = double.PositiveInfinity;
                for (int i = 1; i < order.Length; i++)
                {
                    double gin = u[order[i]] - u[order[i - 1]], gout = next[order[i]] - next[order[i - 1]];
                    shrink = Math.Min(shrink, gout / rangeOut / (gin / rangeIn));
                }
                if (shrink > bestShrink)
                {
                    bestShrink = shrink;
                    bestU = next;
                    bestMap = (w, b);
                }
            }
            layerMaps.Add(bestMap);
            u = bestU!;
        }
        return new Prefix(u, layerMaps.ToArray());
    }

    /// <summary>
    /// Writes the first T − 1 layers into <paramref name="p"/>: layer 0's unit 0 has weights w₀·a and bias b₀, each
    /// later prefix layer's unit 0 weight w and bias b on unit 0 of the layer before (all other weights 0).
    /// </summary>
    public static void Write(double[] p, IReadOnlyList<LayerSlice> layers, Prefix prefix, double[] a)
    {
        var first = layers[0];
        var (w0, b0) = prefix.Layers[0];
        for (int j = 0; j < first.In; j++)
        {
            p[first.WeightOffset + j] = w0 * a[j];
        }
        p[first.BiasOffset] = b0;
        int T = layers.Count - 1;
        for (int t = 1; t < T - 1; t++)
        {
            var (w, b) = prefix.Layers[t];
            p[layers[t].WeightOffset] = w;
            p[layers[t].BiasOffset] = b;
        }
    }
}
