using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Models.Activations;

namespace LossLandscape.Tests;

/// <summary>One network at one point on one dataset, from the shared table of cases.</summary>
public sealed record NetworkCase(string Name, FeedforwardNetwork Network, double[] Parameters, Dataset Data)
{
    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>
/// The shared table of small networks (MLPs and DAGs with shared parameters, every activation, ℓ = 1 and 3; and small
/// convolutional sequential networks, ℓ = 2).
/// </summary>
public static class Cases
{
    /// <summary>Small synthetic data: d points in ℝᵖ with ℓ targets, shifted so rectified units are partly active.</summary>
    public static Dataset Data(int d, int p, int l, int seed) => SyntheticData.Gaussian(d, p, l, seed);

    /// <summary>MLPs: every activation, one and two hidden layers, ℓ = 1 and ℓ = 3, some with input scaling.</summary>
    public static IEnumerable<NetworkCase> Mlps()
    {
        int seed = 0;
        foreach (var sigma in ActivationRegistry.All)
        {
            foreach (int l in new[] { 1, 3 })
            {
                seed++;
                var data = Data(7, 3, l, seed);
                var one = new Mlp(3, [new HiddenLayer(5, sigma)], l);
                yield return new NetworkCase($"mlp 3-5-{l} {sigma.Name}", one, Shifted(one.InitialParameters(seed)), data);
                var two = new Mlp(3, [new HiddenLayer(4, sigma), new HiddenLayer(3, ActivationRegistry.Default)], l)
                    .WithScaling(new InputScaling([0.5, -1, 2], [2, 0.5, 3]));
                yield return new NetworkCase($"mlp 3-4-3-{l} {sigma.Name}/smoolu scaled", two, Shifted(two.InitialParameters(seed + 100)), data);
            }
        }
    }

    /// <summary>
    /// DAGs with skip connections, shared edge labels, shared bias labels, a vertex without bias and mixed
    /// activations: every activation, ℓ = 1 and 3.
    /// </summary>
    public static IEnumerable<NetworkCase> Dags()
    {
        int seed = 50;
        foreach (var sigma in ActivationRegistry.All)
        {
            foreach (int l in new[] { 1, 3 })
            {
                seed++;
                var dag = SharedDag(sigma, l);
                var rng = new Random(seed);
                var p = Enumerable.Range(0, dag.ParameterCount).Select(_ => rng.NextDouble() * 1.6 - 0.5).ToArray();
                yield return new NetworkCase($"dag shared {sigma.Name} ℓ={l}", dag, p, Data(6, 2, l, seed));
            }
        }
    }

    /// <summary>
    /// Small convolutional networks (<see cref="SequentialNetwork"/>), ℓ = 2, d = 6 images: conv2d with and without padding and
    /// stride (stride 2 with a row left over, so that the adjoint needs an output padding), max and average pooling (overlapping
    /// windows too), batch norm in eval mode over channels and over flat features with non-trivial running statistics, flatten,
    /// linear; relu, tanh, smooLU and softplus. n = 62, 77 and 80: small, so that the dense references stay fast.
    /// </summary>
    public static IEnumerable<NetworkCase> Sequentials()
    {
        var relu = ActivationRegistry.Get("relu");
        var tanh = ActivationRegistry.Get("tanh");
        var smoolu = ActivationRegistry.Get("smoolu");
        var softplus = ActivationRegistry.Get("softplus");
        var a = new SequentialNetwork([1, 5, 5],
        [
            new Conv2dLayer(3, 3, 1, 1), new ActivationLayer(relu), new MaxPool2dLayer(2, 2),
            new BatchNormLayer([0.3, -0.2, 0.1], [0.5, 2.0, 1.3], 1e-3), new FlattenLayer(), new LinearLayer(2),
        ]);
        yield return new NetworkCase("seq 1x5x5 conv-relu-maxpool-bn-linear ℓ=2", a, Shifted(a.InitialParameters(71)), Data(6, 25, 2, 71).WithInputShape([1, 5, 5]));
        var b = new SequentialNetwork([2, 4, 4],
        [
            new Conv2dLayer(3, 2), new ActivationLayer(tanh), new AvgPool2dLayer(2, 1), new FlattenLayer(),
            new BatchNormLayer(Enumerable.Range(0, 12).Select(i => 0.05 * i - 0.3).ToArray(), Enumerable.Range(0, 12).Select(i => 0.4 + 0.1 * i).ToArray()),
            new LinearLayer(2),
        ]);
        yield return new NetworkCase("seq 2x4x4 conv-tanh-avgpool-bn1d-linear ℓ=2", b, Shifted(b.InitialParameters(72)), Data(6, 32, 2, 72).WithInputShape([2, 4, 4]));
        var c = new SequentialNetwork([1, 6, 6],
        [
            new Conv2dLayer(2, 3, 2, 1), new ActivationLayer(smoolu), new BatchNormLayer([0.2, -0.1], [0.8, 1.5], 1e-2),
            new Conv2dLayer(2, 2, 1, 1), new ActivationLayer(softplus), new MaxPool2dLayer(2, 1), new FlattenLayer(), new LinearLayer(2),
        ]);
        yield return new NetworkCase("seq 1x6x6 conv/s2-smoolu-bn-conv-softplus-maxpool-linear ℓ=2", c, Shifted(c.InitialParameters(73)), Data(6, 36, 2, 73).WithInputShape([1, 6, 6]));
    }

    /// <summary>All cases.</summary>
    public static IEnumerable<NetworkCase> All() => Mlps().Concat(Dags()).Concat(Sequentials());

    /// <summary>xunit member data of <see cref="All"/>.</summary>
    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var c in All())
        {
            data.Add(c.Name);
        }
        return data;
    }

    /// <summary>The case with this name.</summary>
    public static NetworkCase Get(string name) => All().Single(c => c.Name == name);

    /// <summary>
    /// Inputs 0, 1 (ids 0, 1). Hidden vertices 2, 3, 4 (level 1), 5 (level 2, fed by 3, 4 and input 0),
    /// outputs 6.. fed by 5, 2 and input 1 (skip connections). Labels repeat: edges 0→2 and 1→3 share
    /// parameter 0, vertices 3 and 4 share bias 4, vertex 5 has no bias; 4 uses tanh besides σ.
    /// </summary>
    public static DagNetwork SharedDag(Activation sigma, int outputs)
    {
        var tanh = ActivationRegistry.Get("tanh");
        var vertices = new List<DagVertex>
        {
            new(DagVertexKind.Hidden, 3, sigma),   // 2
            new(DagVertexKind.Hidden, 4, sigma),   // 3
            new(DagVertexKind.Hidden, 4, tanh),    // 4
            new(DagVertexKind.Hidden, null, sigma), // 5
        };
        var edges = new List<DagEdge>
        {
            new(0, 2, 0), new(1, 2, 1), new(1, 3, 0), new(0, 4, 2), new(1, 4, 5),
            new(3, 5, 6), new(4, 5, 7), new(0, 5, 8),
        };
        int next = 9;
        for (int o = 0; o < outputs; o++)
        {
            int id = 6 + o;
            vertices.Add(new DagVertex(DagVertexKind.Output, next++));
            edges.Add(new DagEdge(5, id, next++));
            edges.Add(new DagEdge(2, id, next++));
            edges.Add(new DagEdge(1, id, o == 0 ? next++ : 9 + 3 * 0 + 3)); // later outputs reuse output 0's skip weight
        }
        return new DagNetwork(2, vertices, edges, next);
    }

    private static double[] Shifted(double[] p)
    {
        // Small positive perturbation so that biases are nonzero and rectified units are not all on one side.
        var rng = new Random(p.Length);
        return p.Select(v => v + 0.3 * (rng.NextDouble() - 0.3)).ToArray();
    }
}
