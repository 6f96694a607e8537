using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Construction;

/// <summary>
/// The choice of Lemma 3.3's projection direction a, made for conditioning: among many directions,
/// the one whose sorted projections need the gentlest interpolant.
/// </summary>
/// <remarks>
/// The interpolant along a is piecewise linear in the limit of large scale (for ReLU exactly): its
/// slope between neighbours k − 1, k is Δy_k/gap_k, and the output weights are the slope changes, so
/// the sum f(xᵢ) = Σ_k V_k A_ik cancels by about
/// C(a) = Σ_k ‖y_k − y_{k−1}‖∞ · range / gap_k (neighbours in the sorted order), and its float64
/// rounding error is about ε·C(a)·max|y|. C(a) is what is minimized: first over a batch of random
/// Gaussian directions and the supplied ones, then by a seeded local search (random perturbations of
/// the best directions with shrinking radius, the best kept each round). Scoring is vectorized: one
/// matrix product and one sort per batch.
/// </remarks>
public static class ProjectionDirection
{
    /// <summary>Random directions in the first batch.</summary>
    public const int InitialBatch = 1024;

    /// <summary>Rounds of local search, perturbations per round and the radii (relative to ‖a‖).</summary>
    public static readonly double[] Radii = [0.3, 0.2, 0.1, 0.05, 0.03, 0.01];

    /// <summary>Perturbations per round.</summary>
    public const int PerRound = 512;

    /// <summary>A scored direction.</summary>
    public sealed record Scored(string Name, double[] Direction, double Cancellation);

    /// <summary>
    /// Returns the best <paramref name="keep"/> distinct directions found, lowest cancellation first.
    /// <paramref name="inputs"/> are the (scaled) inputs d × p, <paramref name="targets"/> d × ℓ.
    /// </summary>
    public static IReadOnlyList<Scored> Search(Tensor inputs, Tensor targets, IEnumerable<(string Name, double[] Direction)> extra, int seed, int keep = 3)
    {
        using var scope = NewDisposeScope();
        long p = inputs.shape[1];
        var rng = new Random(seed);
        var pool = new List<Scored>();
        var random = Enumerable.Range(0, InitialBatch).Select(k => ($"random #{k}", SeededNormal.Vector(rng, (int)p))).ToList();
        pool.AddRange(ScoreAll(inputs, targets, random.Concat(extra).ToList()));
        pool = pool.Where(s => double.IsFinite(s.Cancellation)).OrderBy(s => s.Cancellation).ToList();
        if (pool.Count == 0)
        {
            return [];
        }
        foreach (double radius in Radii)
        {
            var parents = pool.Take(4).ToList();
            var children = new List<(string, double[])>();
            for (int c = 0; c < PerRound; c++)
            {
                var parent = parents[c % parents.Count];
                double norm = Math.Sqrt(parent.Direction.Sum(v => v * v));
                var child = parent.Direction.Select(v => v + radius * norm / Math.Sqrt(p) * SeededNormal.Next(rng)).ToArray();
                children.Add((Refined(parent.Name), child));
            }
            pool.AddRange(ScoreAll(inputs, targets, children).Where(s => double.IsFinite(s.Cancellation)));
            pool = pool.OrderBy(s => s.Cancellation).Take(64).ToList();
        }
        return pool.Take(keep).ToArray();
    }

    private static string Refined(string name) => name.EndsWith(", refined", StringComparison.Ordinal) ? name : name + ", refined";

    /// <summary>C(a) for each candidate (∞ when two projections tie).</summary>
    public static IEnumerable<Scored> ScoreAll(Tensor inputs, Tensor targets, IReadOnlyList<(string Name, double[] Direction)> candidates)
    {
        const int batch = 256;
        for (int start = 0; start < candidates.Count; start += batch)
        {
            var slice = candidates.Skip(start).Take(batch).ToArray();
            double[] scores;
            using (var scope = NewDisposeScope())
            {
                var a = tensor(slice.SelectMany(c => c.Direction).ToArray(), [slice.Length, inputs.shape[1]]).t();
                var s = inputs.matmul(a);                                  // d × B projections
                var (sorted, order) = s.sort(0);
                var gaps = sorted.narrow(0, 1, s.shape[0] - 1) - sorted.narrow(0, 0, s.shape[0] - 1);
                var range = sorted[-1] - sorted[0];                      // B
                // ‖y_k − y_{k−1}‖∞ in each candidate's sorted order.
                Tensor dy = zeros_like(gaps);
                for (long j = 0; j < targets.shape[1]; j++)
                {
                    var yj = targets.select(1, j).index_select(0, order.reshape(-1)).view(order.shape);
                    var diff = (yj.narrow(0, 1, s.shape[0] - 1) - yj.narrow(0, 0, s.shape[0] - 1)).abs();
                    dy = maximum(dy, diff);
                }
                var tied = gaps.le(range.unsqueeze(0) * 1e-12);
                var terms = where(dy.gt(0), dy * range.unsqueeze(0) / where(tied, ones_like(gaps), gaps), zeros_like(gaps));
                var score = terms.sum([0L]);
                score = where(tied.any(0), full_like(score, double.PositiveInfinity), score);
                scores = score.data<double>().ToArray();
            }
            for (int k = 0; k < slice.Length; k++)
            {
                yield return new Scored(slice[k].Name, slice[k].Direction, scores[k]);
            }
        }
    }
}
