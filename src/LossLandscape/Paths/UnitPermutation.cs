using LossLandscape.Models;

namespace LossLandscape.Paths;

/// <summary>A layer whose units a <see cref="UnitPermutation"/> permutes.</summary>
/// <param name="Name">The layer, e.g. <c>hidden layer 2</c> (an MLP) or <c>layer 1 conv:4:3:1:1</c> (a sequential network, 1 first).</param>
/// <param name="Width">Its units: an MLP's hidden width, a conv2d layer's output channels, a linear layer's outputs.</param>
public sealed record PermutableLayer(string Name, int Width);

/// <summary>
/// A permutation of the units of every permutable layer of a layered network: the symmetry that makes two networks with
/// permuted hidden units compute the same function. <c>Layers[k][i]</c> is the unit of the original network's permutable
/// layer k that becomes unit i of the permuted one.
/// </summary>
/// <remarks>
/// <para>The permutable layers (<see cref="PermutableLayers"/>) are an <see cref="Mlp"/>'s hidden layers, and a
/// <see cref="SequentialNetwork"/>'s conv2d layers (their output channels) and linear layers (their outputs), all but the
/// last conv2d or linear layer, which makes the outputs.</para>
/// <para>On an MLP (<see cref="Apply(Mlp, double[])"/>), with P_k the permutation matrix (P_k)_{i,π_k(i)} = 1 of hidden layer
/// k and P₀ = I on the inputs, P_{T+1} = I on the outputs: W_k ↦ P_k W_k P_{k−1}ᵀ, b_k ↦ P_k b_k, i.e.
/// W′_k[i, j] = W_k[π_k(i), π_{k−1}(j)] and b′_k[i] = b_k[π_k(i)]. Since σ acts elementwise, σ(P z) = P σ(z), so
/// a′_k = P_k a_k at every layer and the outputs are unchanged: f_{π(p)} = f_p (Ainsworth, Hayase and Srinivasa 2022,
/// "Git Re-Basin", §2).</para>
/// <para>On a sequential network (<see cref="Apply(NetworkPoint)"/>) the same holds channel by channel: a conv2d layer's
/// filters W[o, :, :, :] and bias b[o] move with its channel o, and so do, until the next conv2d or linear layer reads the
/// channel, a batch norm's γ, β and running statistics μ, σ² (so the network changes with p, not p alone), and, through
/// a flatten of [C, H, W], the H·W consecutive features c·H·W … (c + 1)·H·W − 1 of channel c; the reading layer's input
/// channels (conv2d, weight dimension 1) or columns (linear, in blocks of H·W after a flatten) are permuted to match.
/// Activations, pools and batch norms act per channel, and a convolution sums over its input channels, so f is again
/// unchanged (Git Re-Basin, Appendix A, the permutation specs of its CNNs and ResNets).</para>
/// <para>Applying π only copies numbers; the permuted network computes the same sums in another order, so its outputs
/// equal the original's to rounding (libtorch's matrix product does not promise the same bits for a row moved within its
/// tiles). The input scaling belongs to the input layer and is not touched.</para>
/// </remarks>
/// <param name="Layers">One permutation of 0..h_k−1 per permutable layer, first first.</param>
public sealed record UnitPermutation(IReadOnlyList<int[]> Layers)
{
    /// <summary>
    /// The layers of <paramref name="network"/> that a permutation permutes, first first (see the remarks), or a one-line
    /// <see cref="LandscapeInputException"/> for a network without layers: a <see cref="DagNetwork"/> (whose labels may be
    /// shared) has none.
    /// </summary>
    /// <param name="network">An <see cref="Mlp"/> or a <see cref="SequentialNetwork"/>.</param>
    /// <param name="what">What needs the layers, for the message (e.g. <c>weight matching</c>).</param>
    /// <exception cref="LandscapeInputException">A DAG, or another kind of network.</exception>
    public static IReadOnlyList<PermutableLayer> PermutableLayers(FeedforwardNetwork network, string what = "unit permutation") =>
        PermutationSpec.Of(network, what).Layers;

    /// <summary>The identity on every permutable layer of <paramref name="network"/>.</summary>
    /// <exception cref="LandscapeInputException">A network without layers (<see cref="PermutableLayers"/>).</exception>
    public static UnitPermutation Identity(FeedforwardNetwork network) =>
        new(PermutableLayers(network).Select(layer => Enumerable.Range(0, layer.Width).ToArray()).ToArray());

    /// <summary>
    /// A uniformly random permutation of every permutable layer (Fisher–Yates with <see cref="System.Random"/>(<paramref name="seed"/>),
    /// first layer first): deterministic for a seed.
    /// </summary>
    /// <exception cref="LandscapeInputException">A network without layers (<see cref="PermutableLayers"/>).</exception>
    public static UnitPermutation Random(FeedforwardNetwork network, int seed)
    {
        var widths = PermutableLayers(network);
        var rng = new Random(seed);
        var layers = new int[widths.Count][];
        for (int k = 0; k < layers.Length; k++)
        {
            var perm = Enumerable.Range(0, widths[k].Width).ToArray();
            for (int i = perm.Length - 1; i > 0; i--)
            {
                int j = rng.Next(i + 1);
                (perm[i], perm[j]) = (perm[j], perm[i]);
            }
            layers[k] = perm;
        }
        return new UnitPermutation(layers);
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
    /// π(p) on an MLP: the rows of every hidden layer's W and b, and the columns of the next layer's W, reordered
    /// (W′_k[i, j] = W_k[π_k(i), π_{k−1}(j)], b′_k[i] = b_k[π_k(i)]). A new array; p is not modified.
    /// </summary>
    /// <exception cref="ArgumentException">p has the wrong length, or the permutation does not fit the network's widths.</exception>
    public double[] Apply(Mlp mlp, double[] parameters)
    {
        ArgumentNullException.ThrowIfNull(mlp);
        ArgumentNullException.ThrowIfNull(parameters);
        var spec = PermutationSpec.Of(mlp, "unit permutation");
        CheckFits(spec, parameters);
        return spec.Apply(Layers, parameters);
    }

    /// <summary>
    /// π applied to a point of an MLP or a sequential network: the permuted parameters, and the network with its batch
    /// norms' running statistics permuted as their γ and β are (the same network when it has none to move). Computes the
    /// same function as <paramref name="point"/>. Neither the point nor its network is modified.
    /// </summary>
    /// <exception cref="LandscapeInputException">A network without layers (<see cref="PermutableLayers"/>).</exception>
    /// <exception cref="ArgumentException">p has the wrong length, or the permutation does not fit the network's widths.</exception>
    public NetworkPoint Apply(NetworkPoint point)
    {
        ArgumentNullException.ThrowIfNull(point);
        var spec = PermutationSpec.Of(point.Network, "unit permutation");
        CheckFits(spec, point.Parameters);
        var network = point.Network is SequentialNetwork seq ? spec.Apply(Layers, seq) : point.Network;
        return new NetworkPoint(network, spec.Apply(Layers, point.Parameters));
    }

    /// <summary>Throws unless there is one permutation of 0..h_k−1 for every permutable layer k of <paramref name="network"/>.</summary>
    /// <exception cref="ArgumentException">The permutation does not fit.</exception>
    /// <exception cref="LandscapeInputException">A network without layers (<see cref="PermutableLayers"/>).</exception>
    public void CheckFits(FeedforwardNetwork network) => CheckFits(PermutableLayers(network));

    private void CheckFits(PermutationSpec spec, double[] parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        CheckFits(spec.Layers);
        int n = spec.Blocks.Sum(b => b.Count);
        if (parameters.Length != n)
        {
            throw new ArgumentException($"{parameters.Length} parameters for a network with n = {n}", nameof(parameters));
        }
    }

    private void CheckFits(IReadOnlyList<PermutableLayer> layers)
    {
        if (Layers.Count != layers.Count)
        {
            throw new ArgumentException($"a permutation of {Layers.Count} layers for a network with {layers.Count} permutable layers");
        }
        for (int k = 0; k < Layers.Count; k++)
        {
            var perm = Layers[k];
            int width = layers[k].Width;
            if (perm.Length != width)
            {
                throw new ArgumentException($"{layers[k].Name}: a permutation of {perm.Length} units for a layer of width {width}");
            }
            var seen = new bool[width];
            foreach (int u in perm)
            {
                if (u < 0 || u >= width || seen[u])
                {
                    throw new ArgumentException($"{layers[k].Name}: [{string.Join(",", perm)}] is not a permutation of 0..{width - 1}");
                }
                seen[u] = true;
            }
        }
    }
}
