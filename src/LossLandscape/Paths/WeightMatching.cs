using System.Text.Json.Serialization;
using Google.OrTools.Graph;
using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Paths;

/// <summary>
/// What <see cref="WeightMatching.Align(NetworkPoint, NetworkPoint, int, int)"/> found: the permutation π of B's hidden units
/// (or channels), π(B), and how far the coordinate descent went.
/// </summary>
/// <param name="Permutation">π, with π(B) as close to A as the descent got (<see cref="UnitPermutation.Apply(NetworkPoint)"/>).</param>
/// <param name="AlignedB">π(B): the same function as B (only copied numbers), to be joined to A.</param>
/// <param name="AlignedNetwork">
/// The network of π(B): B's, with its batch norms' running statistics permuted as their γ and β are (<see cref="UnitPermutation.Apply(NetworkPoint)"/>);
/// B's own network when it has none to move.
/// </param>
/// <param name="ObjectiveBefore">⟨θ_A, θ_B⟩, the objective at π = id.</param>
/// <param name="ObjectiveAfter">⟨θ_A, π(θ_B)⟩ (≥ <paramref name="ObjectiveBefore"/>: a step is taken only where it rises).</param>
/// <param name="DistanceBefore">‖θ_A − θ_B‖.</param>
/// <param name="DistanceAfter">‖θ_A − π(θ_B)‖; ‖θ_A − π(θ_B)‖² = ‖θ_A‖² + ‖θ_B‖² − 2⟨θ_A, π(θ_B)⟩, so it falls as the objective rises.</param>
/// <param name="Sweeps">Sweeps over the permutable layers, the last one (without a gain) included.</param>
/// <param name="Steps">Layer steps accepted (a new assignment with a larger float64 objective).</param>
/// <param name="Status"><see cref="SolverStatus.Converged"/> when a whole sweep found no gain; <see cref="SolverStatus.StoppedWithoutConvergence"/> at the sweep limit.</param>
/// <param name="CostScale">K of the integer costs −round(K·S/max|S|) the last assignment problem was solved with (<see cref="WeightMatching.CostScale"/> unless OR-Tools reported a possible overflow).</param>
public sealed record WeightMatchingResult(
    UnitPermutation Permutation,
    [property: JsonIgnore] double[] AlignedB,
    [property: JsonIgnore] FeedforwardNetwork AlignedNetwork,
    double ObjectiveBefore,
    double ObjectiveAfter,
    double DistanceBefore,
    double DistanceAfter,
    int Sweeps,
    int Steps,
    SolverStatus Status,
    [property: JsonIgnore] long CostScale);

/// <summary>
/// Weight matching (Ainsworth, Hayase and Srinivasa 2022, "Git Re-Basin", §3.1): the permutation π of B's hidden units that
/// brings its weights closest to A's, by coordinate descent over the layers, each step a linear assignment problem.
/// </summary>
/// <remarks>
/// <para>The objective is max_π Σ_k ⟨W_k^A, P_k W_k^B P_{k−1}ᵀ⟩ + ⟨b_k^A, P_k b_k^B⟩ (P₀ = I on the inputs, no permutation of
/// the outputs), which is ⟨θ_A, π(θ_B)⟩ over the whole parameter vector, and so minimises ‖θ_A − π(θ_B)‖ (π preserves norms).
/// With every P but P_l fixed it is linear in P_l: Σ_i S[i, π_l(i)] with the similarity
/// S = W_l^A (W_l^B P_{l−1}ᵀ)ᵀ + b_l^A b_l^Bᵀ + (W_{l+1}^A)ᵀ P_{l+1} W_{l+1}^B (h_l × h_l; rows A's units, columns B's), a
/// linear assignment problem. The descent visits the hidden layers in a random order each sweep (seeded), as Git Re-Basin's
/// Algorithm 1 does, and stops after a sweep in which no layer gained.</para>
/// <para>A sequential network (<c>losslandscape.seq/1</c>) is matched the same way over its permutable layers (conv2d
/// channels and linear units, all but the last such layer; <see cref="UnitPermutation"/>): the similarity of a channel
/// sums every weight that moves with it, its filter W[o, :, :, :] and bias, a following batch norm's γ and β, and the next
/// layer's input slice (its H·W columns after a flatten), as Git Re-Basin's permutation specs do (their Appendix A), so
/// that the objective is again ⟨θ_A, π(θ_B)⟩ over all of p.</para>
/// <para>The assignment problems are solved by Google OR-Tools' <c>LinearSumAssignment</c> (cost-scaling push–relabel,
/// Goldberg and Kennedy 1995), which takes integer costs: cost[i, u] = −round(K·S[i, u]/max|S|). Rounding moves each entry by
/// at most max|S|/(2K), so an assignment's integer score is within h·max|S|/(2K) of its exact one and the integer optimum is
/// within h·max|S|/K of the float64 optimum (K = 2⁴⁰: 9·10⁻¹³·h·max|S|, below the float64 noise of S itself for the widths
/// here). The permutation returned is then scored in float64 on S and taken only if that score is strictly larger than the
/// current permutation's: the objective never falls, and since it rises strictly with every step, the descent cannot cycle.</para>
/// <para>The input scaling belongs to the input layer and is left alone; so is the output layer.</para>
/// </remarks>
public static class WeightMatching
{
    /// <summary>
    /// K = 2⁴⁰ ≈ 1.1·10¹²: the integer resolution of a similarity matrix (its largest entry maps to ±K). OR-Tools multiplies the
    /// costs by (number of nodes + 1) inside its cost scaling and reports a possible overflow of int64 (9.2·10¹⁸) as a
    /// status; 2⁴⁰·(2h + 1) stays below that for h up to 4·10⁶, and a reported overflow halves K and solves again.
    /// </summary>
    public const long CostScale = 1L << 40;

    /// <summary>100 sweeps: Git Re-Basin's <c>max_iter</c>; the descent on the networks here stops after 2–5.</summary>
    public const int DefaultMaxSweeps = 100;

    /// <summary>
    /// The smallest K a reported overflow may halve to: 2²⁰ ≈ 10⁶ still resolves S to 10⁻⁶ relative, after which OR-Tools'
    /// status is taken as a failure.
    /// </summary>
    private const long MinCostScale = 1L << 20;

    /// <summary>
    /// Aligns B to A: checks that both are points of the same layered network, up to the batch norms' running statistics,
    /// which a permutation moves (<see cref="EndpointCheck.RequireSameArchitecture"/>; <see cref="UnitPermutation.PermutableLayers"/>
    /// refuses a DAG), and runs the coordinate descent of the class remarks on their parameters.
    /// </summary>
    /// <remarks>
    /// The objective is ⟨θ_A, π(θ_B)⟩ over p only: a batch norm's running statistics are fixed values of the network, not
    /// weights, and are carried along with π (<see cref="WeightMatchingResult.AlignedNetwork"/>), not matched.
    /// </remarks>
    /// <exception cref="LandscapeInputException">A DAG network, or two different architectures.</exception>
    public static WeightMatchingResult Align(NetworkPoint a, NetworkPoint b, int seed, int maxSweeps = DefaultMaxSweeps)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        EndpointCheck.RequireSameArchitecture(a, b, compareStatistics: false);
        var spec = PermutationSpec.Of(a.Network, "weight matching");
        return Align(spec, b.Network, a.Parameters, b.Parameters, seed, maxSweeps);
    }

    /// <summary>
    /// The permutation π of B's hidden units maximising ⟨θ_A, π(θ_B)⟩, by coordinate descent over the layers (see the class
    /// remarks); π(θ_B) computes the same function as θ_B.
    /// </summary>
    /// <param name="network">The layered network both points belong to.</param>
    /// <param name="a">θ_A, the reference.</param>
    /// <param name="b">θ_B, the point whose units are permuted.</param>
    /// <param name="seed">Seed of the order in which each sweep visits the layers.</param>
    /// <param name="maxSweeps">The most sweeps (<see cref="DefaultMaxSweeps"/>).</param>
    public static WeightMatchingResult Align(Mlp network, double[] a, double[] b, int seed, int maxSweeps = DefaultMaxSweeps)
    {
        ArgumentNullException.ThrowIfNull(network);
        return Align(PermutationSpec.Of(network, "weight matching"), network, a, b, seed, maxSweeps);
    }

    private static WeightMatchingResult Align(PermutationSpec spec, FeedforwardNetwork networkB, double[] a, double[] b, int seed, int maxSweeps)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Length != networkB.ParameterCount || b.Length != networkB.ParameterCount)
        {
            throw new LandscapeInputException($"the points have {a.Length} and {b.Length} parameters, the network n = {networkB.ParameterCount}");
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSweeps, 1);
        TorchRuntime.EnsureInitialized();

        var perms = spec.Layers.Select(layer => Enumerable.Range(0, layer.Width).ToArray()).ToArray();
        int hidden = perms.Length;
        var rng = new Random(seed);
        long scale = CostScale;
        int sweeps = 0;
        int steps = 0;
        var status = hidden == 0 ? SolverStatus.Converged : SolverStatus.StoppedWithoutConvergence;
        using (var scope = NewDisposeScope())
        {
            var ta = tensor(a, dtype: float64);
            var tb = tensor(b, dtype: float64);
            while (hidden > 0 && sweeps < maxSweeps)
            {
                sweeps++;
                bool gained = false;
                var order = Enumerable.Range(0, hidden).ToArray();
                rng.Shuffle(order);
                foreach (int l in order)
                {
                    var similarity = Similarity(spec, ta, tb, perms, l);
                    int h = perms[l].Length;
                    var (candidate, used) = Assign(similarity, h, scale);
                    scale = used;
                    if (Score(similarity, h, candidate) > Score(similarity, h, perms[l]))
                    {
                        perms[l] = candidate;
                        gained = true;
                        steps++;
                    }
                }
                if (!gained)
                {
                    status = SolverStatus.Converged;
                    break;
                }
            }
        }
        var permutation = new UnitPermutation(perms);
        var aligned = spec.Apply(perms, b);
        var alignedNetwork = networkB is SequentialNetwork seq ? spec.Apply(perms, seq) : networkB;
        return new WeightMatchingResult(permutation, aligned, alignedNetwork, ConnectingPath.Dot(a, b), ConnectingPath.Dot(a, aligned), ConnectingPath.Distance(a, b),
            ConnectingPath.Distance(a, aligned), sweeps, steps, status, scale);
    }

    /// <summary>⟨θ_A, θ_B⟩ = Σ_k ⟨W_k^A, W_k^B⟩ + ⟨b_k^A, b_k^B⟩, the weight-matching objective at π = id, in float64.</summary>
    public static double Objective(double[] a, double[] b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return a.Length == b.Length ? ConnectingPath.Dot(a, b) : throw new ArgumentException($"points of {a.Length} and {b.Length} parameters");
    }

    /// <summary>
    /// S for permutable layer <paramref name="l"/>, the other layers held at <paramref name="perms"/>: row-major h_l × h_l
    /// (rows: A's units, columns: B's), the sum over every block of p that layer l's units touch (<see cref="PermutationSpec"/>)
    /// of A's block with l's axis first, flattened to h_l rows, times B's likewise with its other axis permuted, transposed.
    /// </summary>
    /// <remarks>
    /// For an MLP this is S = W_l^A (W_l^B P_{l−1}ᵀ)ᵀ + b_l^A b_l^Bᵀ + (W_{l+1}^A)ᵀ P_{l+1} W_{l+1}^B; for a channel of a
    /// conv2d layer it sums its filter W[o, :, :, :], its bias, the γ and β of a batch norm on it, and the next layer's
    /// input slice W[:, o, :, :] (or its H·W columns after a flatten), as Git Re-Basin's <c>get_permuted_param</c> and
    /// <c>weight_matching</c> do over a permutation spec.
    /// </remarks>
    private static double[] Similarity(PermutationSpec spec, Tensor a, Tensor b, int[][] perms, int l)
    {
        using var scope = NewDisposeScope();
        int h = perms[l].Length;
        var s = zeros(h, h, dtype: float64);
        foreach (var block in spec.Blocks)
        {
            if (block.RowLayer != l && block.ColLayer != l)
            {
                continue;
            }
            var wa = a.narrow(0, block.Offset, block.Count).view(block.Rows, block.Cols, block.Inner);
            var wb = b.narrow(0, block.Offset, block.Count).view(block.Rows, block.Cols, block.Inner);
            if (block.RowLayer == l)
            {
                // The columns of B's block follow the units below as already permuted: wb[:, c, :] = B[:, π_col(c), :].
                if (block.ColLayer >= 0)
                {
                    wb = wb.index_select(1, Indices(perms[block.ColLayer]));
                }
                s.PlusInPlace(wa.reshape(block.Rows, -1).matmul(wb.reshape(block.Rows, -1).t()));
            }
            else
            {
                // The rows of B's block follow the units above as already permuted: wb[r, :, :] = B[π_row(r), :, :].
                if (block.RowLayer >= 0)
                {
                    wb = wb.index_select(0, Indices(perms[block.RowLayer]));
                }
                s.PlusInPlace(wa.transpose(0, 1).reshape(block.Cols, -1).matmul(wb.transpose(0, 1).reshape(block.Cols, -1).t()));
            }
        }
        return s.contiguous().data<double>().ToArray();
    }

    private static Tensor Indices(int[] perm) => tensor(perm.Select(i => (long)i).ToArray());

    /// <summary>
    /// The assignment maximising Σ_i S[i, π(i)] on the integer costs −round(K·S/max|S|), by OR-Tools; halves K while OR-Tools
    /// reports a possible overflow. Returns the permutation and the K used.
    /// </summary>
    private static (int[] Permutation, long Scale) Assign(double[] similarity, int h, long scale)
    {
        double max = similarity.Max(Math.Abs);
        if (!(max > 0) || !double.IsFinite(max))
        {
            // S = 0 (every assignment scores the same), or not finite: keep the identity, which the float64 test then refuses.
            return (Enumerable.Range(0, h).ToArray(), scale);
        }
        while (true)
        {
            using var assignment = new LinearSumAssignment();
            double factor = scale / max;
            for (int i = 0; i < h; i++)
            {
                for (int u = 0; u < h; u++)
                {
                    // Minimum cost = maximum similarity.
                    assignment.AddArcWithCost(i, u, -(long)Math.Round(factor * similarity[(i * h) + u]));
                }
            }
            var status = assignment.Solve();
            if (status == LinearSumAssignment.Status.OPTIMAL)
            {
                var perm = new int[h];
                for (int i = 0; i < h; i++)
                {
                    perm[i] = assignment.RightMate(i);
                }
                return (perm, scale);
            }
            if (status != LinearSumAssignment.Status.POSSIBLE_OVERFLOW || scale / 2 < MinCostScale)
            {
                throw new InvalidOperationException($"OR-Tools' linear sum assignment returned {status} on a complete {h} × {h} bipartite graph (cost scale {scale})");
            }
            scale /= 2;
        }
    }

    /// <summary>Σ_i S[i, π(i)] in float64, i ascending.</summary>
    private static double Score(double[] similarity, int h, int[] perm)
    {
        double sum = 0;
        for (int i = 0; i < h; i++)
        {
            sum += similarity[(i * h) + perm[i]];
        }
        return sum;
    }
}
