using LossLandscape.Models;

namespace LossLandscape.Construction;

/// <summary>
/// Remark 4.2 ("ℓ copies of the network, one for each component of yᵢ"): when the last hidden layer has room for K·d
/// units in a one-hidden-layer network, the targets are split into K blocks T₁ + … + T_K = y, each interpolated by its
/// own d units with its own projection direction, chosen for the cancellation of that block alone.
/// </summary>
internal static class Remark42Copies
{
    /// <summary>
    /// ℓ = 1 targets with at most this many distinct nonzero values are treated as class labels, one copy per value:
    /// 32. Chosen to cover the class counts of the embedded data (3 for iris, 10 for digits) with room; beyond it the
    /// targets are regression values, and copies would multiply the width without giving each a cleaner order.
    /// </summary>
    public const int MaxLabelValues = 32;

    /// <summary>
    /// The target blocks: for ℓ &gt; 1, one block per nonzero output column (T_j = y_j e_jᵀ); for ℓ = 1 with at most
    /// <see cref="MaxLabelValues"/> distinct nonzero values, one block per value v (T_v = y·1[y = v]), so each copy
    /// interpolates an indicator whose sorted order changes value only where that class meets the others. Σ T = y.
    /// One block, y itself, when the network is deeper than one hidden layer, when there is a single block, or when
    /// the last hidden layer has fewer than K·d units.
    /// </summary>
    public static List<double[][]> Decompose(double[][] y, int lastWidth, int depth)
    {
        int d = y.Length, l = y[0].Length;
        var single = new List<double[][]> { y };
        if (depth != 1)
        {
            return single;
        }
        List<double[][]> blocks;
        if (l > 1)
        {
            blocks = Enumerable.Range(0, l)
                .Where(j => y.Any(r => r[j] != 0))
                .Select(j => y.Select(r => r.Select((v, jj) => jj == j ? v : 0.0).ToArray()).ToArray())
                .ToList();
        }
        else
        {
            var values = y.Select(r => r[0]).Where(v => v != 0).Distinct().ToArray();
            if (values.Length > MaxLabelValues)
            {
                return single;
            }
            blocks = values.Select(v => y.Select(r => new[] { r[0] == v ? v : 0.0 }).ToArray()).ToList();
        }
        return blocks.Count > 1 && (long)blocks.Count * d <= lastWidth ? blocks : single;
    }

    /// <summary>Copies side by side: copy c uses hidden units c·d … c·d + d − 1 and adds its V_c to the outputs.</summary>
    public static double[] Assemble(Mlp mlp, Lemma33TriangularSystem.Candidate[] copies)
    {
        var p = new double[mlp.ParameterCount];
        var first = mlp.Layers[0];
        var output = mlp.Layers[1];
        int d = copies[0].Order.Length;
        for (int c = 0; c < copies.Length; c++)
        {
            var copy = copies[c];
            for (int k = 0; k < d; k++)
            {
                int unit = c * d + k;
                for (int j = 0; j < first.In; j++)
                {
                    p[first.WeightOffset + unit * first.In + j] = copy.Alpha * copy.A[j];
                }
                p[first.BiasOffset + unit] = -copy.Alpha * copy.Breakpoints[k];
                for (int o = 0; o < output.Out; o++)
                {
                    p[output.WeightOffset + o * output.In + unit] = copy.V[k, o];
                }
            }
        }
        return p;
    }
}
