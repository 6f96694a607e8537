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
internal static class ProjectionDirection
{
    /// <summary>
    /// Random Gaussian directions in the first batch: 1024. Chosen: the best of a thousand draws is a sound start for the
    /// local search (whose rounds refine it), at the cost of four scoring batches of <see cref="ScoringBatch"/>.
    /// </summary>
    public const int InitialBatch = 1024;

    /// <summary>
    /// The radii of the rounds of local search, relative to ‖a‖: a geometric-like schedule from 0.3 (a new neighbourhood)
    /// down to 0.01 (fine tuning), one round each. Chosen: each round shrinks the radius by a factor of 1.5 to 2, so the
    /// search moves from exploring to refining in six rounds of <see cref="PerRound"/> scored perturbations.
    /// </summary>
    public static readonly double[] Radii = [0.3, 0.2, 0.1, 0.05, 0.03, 0.01];

    /// <summary>Perturbations per round: 512, two scoring batches; with <see cref="Parents"/> parents, 128 children each.</summary>
    public const int PerRound = 512;

    /// <summary>The best directions perturbed in each round: 4, so one unlucky local minimum of the score does not capture the search.</summary>
    public const int Parents = 4;

    /// <summary>Directions kept between rounds: 64, enough to hold the parents and the best children of several rounds.</summary>
    public const int PoolSize = 64;

    /// <summary>Candidates scored by one matrix product and one sort: 256, a d × 256 block (2 MB per 1000 rows of data).</summary>
    public const int ScoringBatch = 256;

    /// <summary>
    /// Two projections whose gap is at most this fraction of the range count as tied (score ∞): 1e−12, about 4500·ε, where
    /// the gap is rounding in a·xᵢ itself and Lemma 3.3's distinctness no longer holds numerically.
    /// </summary>
    public const double TieFraction = 1e-12;

    /// <summary>A scored direction.</summary>
    public sealed record Scored(string Name, double[] Direction, double Cancellation);

    /// <summary>
    /// Returns the best <paramref name="keep"/> distinct directions found, lowest cancellation first.
    /// <paramref name="inputs"/> are the (scaled) inputs d × p, <paramref name="targets"/> d × ℓ.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token of <paramref name="limits"/> was cancelled (checked before each round of refinement).</exception>
    public static IReadOnlyList<Scored> Search(Tensor inputs, Tensor targets, IEnumerable<(string Name, double[] Direction)> extra, int seed, int keep = 3, RunLimits? limits = null)
    {
        limits ??= RunLimits.Default;
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
            limits.ThrowIfCancellationRequested();
            var parents = pool.Take(Parents).ToList();
            var children = new List<(string, double[])>();
            for (int c = 0; c < PerRound; c++)
            {
                var parent = parents[c % parents.Count];
                double norm = Math.Sqrt(parent.Direction.Sum(v => v * v));
                var child = parent.Direction.Select(v => v + radius * norm / Math.Sqrt(p) * SeededNormal.Next(rng)).ToArray();
                children.Add((Refined(parent.Name), child));
            }
            pool.AddRange(ScoreAll(inputs, targets, children).Where(s => double.IsFinite(s.Cancellation)));
            pool = pool.OrderBy(s => s.Cancellation).Take(PoolSize).ToList();
        }
        return pool.Take(keep).ToArray();
    }

    private static string Refined(string name) => name.EndsWith(", refined", StringComparison.Ordinal) ? name : name + ", refined";

    /// <summary>C(a) for each candidate (∞ when two projections tie).</summary>
    public static IEnumerable<Scored> ScoreAll(Tensor inputs, Tensor targets, IReadOnlyList<(string Name, double[] Direction)> candidates)
    {
        for (int start = 0; start < candidates.Count; start += ScoringBatch)
        {
            var slice = candidates.Skip(start).Take(ScoringBatch).ToArray();
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
                var tied = gaps.le(range.unsqueeze(0).Times(TieFraction));
                var terms = where(dy.Above(0), dy * range.unsqueeze(0) / where(tied, ones_like(gaps), gaps), zeros_like(gaps));
                var score = terms.sum([0L]);
                score = where(tied.any(0), score.FilledLike(double.PositiveInfinity), score);
                scores = score.data<double>().ToArray();
            }
            for (int k = 0; k < slice.Length; k++)
            {
                yield return new Scored(slice[k].Name, slice[k].Direction, scores[k]);
            }
        }
    }
}
