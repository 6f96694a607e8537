using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>
/// A permutation of the units of every hidden layer of an <see cref="Mlp"/>: the symmetry that makes two networks with
/// permuted hidden units compute the same function. <c>Layers[k][i]</c> is the unit of the original network's hidden layer
/// k that becomes unit i of the permuted one.
/// </summary>
/// <remarks>
/// <para>Applied to p (<see cref="Apply"/>), with P_k the permutation matrix (P_k)_{i,π_k(i)} = 1 of hidden layer k and
/// P₀ = I on the inputs, P_{T+1} = I on the outputs:
/// W_k ↦ P_k W_k P_{k−1}ᵀ, b_k ↦ P_k b_k, i.e. W′_k[i, j] = W_k[π_k(i), π_{k−1}(j)] and b′_k[i] = b_k[π_k(i)].
/// Since σ acts elementwise, σ(P z) = P σ(z), so a′_k = P_k a_k at every layer and the outputs are unchanged: f_{π(p)} = f_p
/// (Ainsworth, Hayase and Srinivasa 2022, "Git Re-Basin", §2). Applying π only copies numbers; the permuted network
/// computes the same sums in another order, so its outputs equal the original's to rounding (libtorch's matrix product does
/// not promise the same bits for a row moved within its tiles).</para>
/// <para>The input scaling (x − shift)/scale belongs to the input layer and is not touched; the linear output layer is
/// never permuted (its units are f's coordinates).</para>
/// </remarks>
/// <param name="Layers">One permutation of 0..h_k−1 per hidden layer, first hidden layer first.</param>
public sealed record UnitPermutation(IReadOnlyList<int[]> Layers)
{
    /// <summary>The identity on every hidden layer of <paramref name="mlp"/>.</summary>
    public static UnitPermutation Identity(Mlp mlp)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        return new UnitPermutation(mlp.Hidden.Select(h => Enumerable.Range(0, h.Width).ToArray()).ToArray());
    }

    /// <summary>
    /// A uniformly random permutation of every hidden layer (Fisher–Yates with <see cref="Random"/>(<paramref name="seed"/>),
    /// first hidden layer first): deterministic for a seed.
    /// </summary>
    public static UnitPermutation Random(Mlp mlp, int seed)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        var rng = new Random(seed);
        var layers = new int[mlp.Hidden.Count][];
        for (int k = 0; k < layers.Length; k++)
        {
            var perm = Enumerable.Range(0, mlp.Hidden[k].Width).ToArray();
            for (int i = perm.Length - 1; i > 0; i--)
            {
                int j = rng.Next(i + 1);
                (perm[i], perm[j]) = (perm[j], perm[i]);
            }
            layers[k] = perm;
        }
        return new UnitPermutation(layers);
    }

    /// <summary>
    /// The network as a layered one, or a <see cref="LandscapeInputException"/> for a DAG: unit permutations and weight matching
    /// act on layers, and a <see cref="DagNetwork"/> (whose labels may be shared) has none.
    /// </summary>
    /// <param name="network">The network.</param>
    /// <param name="what">What needs the layers, for the message (e.g. <c>weight matching</c>).</param>
    public static Mlp RequireLayered(FeedforwardNetwork network, string what)
    {
        ArgumentNullException.ThrowIfNull(network);
        return network switch
        {
            Mlp mlp => mlp,
            DagNetwork dag => throw new LandscapeInputException(
                $"{what} is for layered networks ({ModelFile.MlpFormat}); this is a DAG ({ModelFile.DagFormat}, {dag.Vertices.Count} vertices, {dag.ParameterCount} labels, possibly shared), whose units form no layers to permute"),
            SequentialNetwork seq => throw new LandscapeInputException(
                $"{what} is for MLPs ({ModelFile.MlpFormat}) so far; this is a sequential network ({ModelFile.SeqFormat}, {seq.Spec}), whose channels it does not permute yet"),
            _ => throw new LandscapeInputException($"{what} is for layered networks ({ModelFile.MlpFormat}); this is a {network.GetType().Name}"),
        };
    }

    /// <summary>Whether every layer is the identity.</summary>
    public bool IsIdentity => Layers.All(layer => layer.Select((u, i) => u == i).All(x => x));

    /// <summary>π⁻¹: <c>Inverse().Layers[k][π_k(i)] = i</c>, so that π⁻¹(π(p)) = p.</summary>
    public UnitPermutation Inverse() =>
        new(Layers.Select(perm =>
        {
            var inverse = new int[perm.Length];
            for (int i = 0; i < perm.Length; i++)
            {
                inverse[perm[i]] = i;
            }
            return inverse;
        }).ToArray());

    /// <summary>
    /// π(p): the rows of every hidden layer's W and b, and the columns of the next layer's W, reordered
    /// (W′_k[i, j] = W_k[π_k(i), π_{k−1}(j)], b′_k[i] = b_k[π_k(i)]). A new array; p is not modified.
    /// </summary>
    /// <exception cref="ArgumentException">p has the wrong length, or the permutation does not fit the network's widths.</exception>
    public double[] Apply(Mlp mlp, double[] parameters)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        ArgumentNullException.ThrowIfNull(parameters);
        CheckFits(mlp);
        if (parameters.Length != mlp.ParameterCount)
        {
            throw new ArgumentException($"{parameters.Length} parameters for a network with n = {mlp.ParameterCount}", nameof(parameters));
        }
        var result = new double[parameters.Length];
        int[]? rowsBelow = null;
        for (int k = 0; k < mlp.Layers.Count; k++)
        {
            var layer = mlp.Layers[k];
            // The output layer (k = T) keeps its rows; the input layer's columns (k = 0) are not permuted.
            int[]? rows = k < Layers.Count ? Layers[k] : null;
            for (int i = 0; i < layer.Out; i++)
            {
                int source = rows is null ? i : rows[i];
                int to = layer.WeightOffset + (i * layer.In);
                int from = layer.WeightOffset + (source * layer.In);
                if (rowsBelow is null)
                {
                    Array.Copy(parameters, from, result, to, layer.In);
                }
                else
                {
                    for (int j = 0; j < layer.In; j++)
                    {
                        result[to + j] = parameters[from + rowsBelow[j]];
                    }
                }
                result[layer.BiasOffset + i] = parameters[layer.BiasOffset + source];
            }
            rowsBelow = rows;
        }
        return result;
    }

    /// <summary>Throws unless there is one permutation of 0..h_k−1 for every hidden layer k of <paramref name="mlp"/>.</summary>
    /// <exception cref="ArgumentException">The permutation does not fit.</exception>
    public void CheckFits(Mlp mlp)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        if (Layers.Count != mlp.Hidden.Count)
        {
            throw new ArgumentException($"a permutation of {Layers.Count} hidden layers for a network with {mlp.Hidden.Count}");
        }
        for (int k = 0; k < Layers.Count; k++)
        {
            var perm = Layers[k];
            int width = mlp.Hidden[k].Width;
            if (perm.Length != width)
            {
                throw new ArgumentException($"hidden layer {k + 1}: a permutation of {perm.Length} units for a layer of width {width}");
            }
            var seen = new bool[width];
            foreach (int u in perm)
            {
                if (u < 0 || u >= width || seen[u])
                {
                    throw new ArgumentException($"hidden layer {k + 1}: [{string.Join(",", perm)}] is not a permutation of 0..{width - 1}");
                }
                seen[u] = true;
            }
        }
    }
}
