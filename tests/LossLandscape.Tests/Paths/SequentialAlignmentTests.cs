using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Unit permutations (<see cref="UnitPermutation"/>) and weight matching (<see cref="WeightMatching"/>) of
/// <c>losslandscape.seq/1</c> networks: a conv2d layer's channels followed through batch norm (γ, β and the running
/// statistics), activations, pools and flatten to the next conv2d or linear layer; <c>landscape permute</c> on a seq file
/// and <c>connect --align weight-matching</c> between two.
/// </summary>
public sealed class SequentialAlignmentTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-seq-align-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private static string Digits40 => Path.Combine(AppContext.BaseDirectory, "Fixtures", "npz", "digits40.npz");

    /// <summary>
    /// Architectures with conv, bn (2-d and, after a flatten, 1-d in blocks of H·W), relu, tanh, max and average pooling,
    /// flatten and linear layers, on 1 × 8 × 8 images (the shape of digits40) or 2 × 7 × 7.
    /// </summary>
    public static TheoryData<string, int[]> Architectures() => new()
    {
        // 4@6×6, pool 4@3×3, 6@1×1, flatten 6: the example.
        { "conv:4:3,bn,relu,pool:2,conv:6:3,tanh,flatten,linear:5,relu,linear", [1, 8, 8] },
        // 4@8×8, pool 4@4×4, 6@4×4, avgpool 6@2×2, flatten 24 (channel c is features 4c … 4c + 3).
        { "conv:4:3:1:1,bn,relu,pool:2,conv:6:3:1:1,tanh,bn,avgpool:2,flatten,linear:5,relu,linear", [1, 8, 8] },
        // 3@5×5, pool 3@2×2, flatten 12 then a batch norm on it in blocks of 4, linear 4 with a batch norm on its units.
        { "conv:3:3,tanh,maxpool:2,flatten,bn,linear:4,tanh,bn,linear", [2, 7, 7] },
    };

    /// <summary>
    /// The network of <paramref name="spec"/> with ℓ = 10, every batch norm given running statistics that differ from channel
    /// to channel (μ ∈ [−0.5, 0.5], σ² ∈ [0.5, 2]) and a stored input scaling, so that moving them wrongly changes f.
    /// </summary>
    private static SequentialNetwork Network(string spec, int[] shape, int seed = 0)
    {
        var inputShape = shape.Select(s => (long)s).ToArray();
        var fresh = ArchitectureSpec.Build(spec, inputShape, 10);
        var rng = new Random(100 + seed);
        var layers = fresh.Layers.Select(s => s.Layer is BatchNormLayer bn
            ? new BatchNormLayer(
                Enumerable.Range(0, (int)s.InputShape[0]).Select(_ => rng.NextDouble() - 0.5).ToArray(),
                Enumerable.Range(0, (int)s.InputShape[0]).Select(_ => 0.5 + (1.5 * rng.NextDouble())).ToArray(), bn.Eps)
            : s.Layer).ToArray();
        int p = fresh.InputDim;
        return new SequentialNetwork(inputShape, layers)
            .WithScaling(new InputScaling(Enumerable.Range(0, p).Select(i => 0.01 * (i % 7)).ToArray(), Enumerable.Range(0, p).Select(i => 1 + (0.1 * (i % 3))).ToArray()));
    }

    /// <summary>He initialization plus U(−0.3, 0.3) on every parameter, so that biases, γ and β are permuted visibly too.</summary>
    private static double[] Point(SequentialNetwork network, int seed)
    {
        var p = network.InitialParameters(seed);
        var rng = new Random(seed + 1000);
        return p.Select(v => v + (0.3 * ((rng.NextDouble() * 2) - 1))).ToArray();
    }

    private static double[] Outputs(NetworkPoint point)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var x = Cases.Data(25, point.Network.InputDim, point.Network.OutputDim, 7).InputsTensor();
        return point.Network.Forward(tensor(point.Parameters), x).data<double>().ToArray();
    }

    /// <summary>max|f_p − f_q| ≤ <see cref="Tolerances.PermutedSequentialOutputs"/>·max(1, max|f_p|).</summary>
    private static void AssertSameFunction(NetworkPoint p, NetworkPoint q)
    {
        var fp = Outputs(p);
        var fq = Outputs(q);
        double scale = Math.Max(1, fp.Max(Math.Abs));
        double gap = fp.Zip(fq, (u, v) => Math.Abs(u - v)).Max();
        Assert.True(gap <= Tolerances.PermutedSequentialOutputs * scale, $"max|f_p − f_q| = {gap:G3}, max|f| = {scale:G3}");
    }

    private static IEnumerable<BatchNormLayer> BatchNorms(FeedforwardNetwork network) =>
        ((SequentialNetwork)network).Layers.Select(s => s.Layer).OfType<BatchNormLayer>();

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Permuted_Sequential_Network_Computes_The_Same_Outputs(string spec, int[] shape)
    {
        var network = Network(spec, shape);
        var a = new NetworkPoint(network, Point(network, 1));
        var pi = UnitPermutation.Random(network, 11);
        Assert.All(pi.Layers, layer => Assert.NotEqual(Enumerable.Range(0, layer.Length), layer));

        var b = pi.Apply(a);

        // Only copied numbers, moved (so the check below is not of a copy), statistics included, and undone by π⁻¹.
        Assert.NotEqual(a.Parameters, b.Parameters);
        Assert.Equal(a.Parameters.Order(), b.Parameters.Order());
        Assert.NotEqual(BatchNorms(a.Network).SelectMany(bn => bn.RunningMean!), BatchNorms(b.Network).SelectMany(bn => bn.RunningMean!));
        Assert.Equal(a.Network.Scaling, b.Network.Scaling);
        Assert.Null(EndpointCheck.Difference(a.Network, b.Network, compareStatistics: false));
        var back = pi.Inverse().Apply(b);
        Assert.Equal(a.Parameters, back.Parameters);
        Assert.Null(EndpointCheck.Difference(a.Network, back.Network));
        AssertSameFunction(a, b);
        // The statistics are part of the function: π(p) on the original network's statistics is another function.
        var stale = new NetworkPoint(a.Network, b.Parameters);
        double gap = Outputs(a).Zip(Outputs(stale), (u, v) => Math.Abs(u - v)).Max();
        Assert.True(gap > 1e-3, $"π(p) with unpermuted statistics: max|Δf| = {gap:G3}");
    }

    [Fact]
    public void Permutable_Layers_Are_The_Conv_And_Linear_Layers_But_The_Last()
    {
        var network = Network("conv:4:3,bn,relu,pool:2,conv:6:3,tanh,flatten,linear:5,relu,linear", [1, 8, 8]);
        var layers = UnitPermutation.PermutableLayers(network);
        Assert.Equal(["layer 1 conv:4:3:1:0", "layer 5 conv:6:3:1:0", "layer 8 linear:5"], layers.Select(l => l.Name));
        Assert.Equal([4, 6, 5], layers.Select(l => l.Width));
        // A last conv whose flattened channels are the outputs is not permuted either.
        var convOut = ArchitectureSpec.Build("conv:3:3,relu,conv:2:3,flatten", [1, 5, 5], 2);
        Assert.Equal([3], UnitPermutation.PermutableLayers(convOut).Select(l => l.Width));
        Assert.Empty(UnitPermutation.PermutableLayers(ArchitectureSpec.Build("bn,flatten,linear", [1, 3, 3], 2)));
    }

    [Fact]
    public void Permutation_Moves_Channels_Batch_Norm_Statistics_And_Flattened_Blocks()
    {
        // 1 × 1 × 2 input, conv:2:1 (channels 0, 1 of 1 × 2), bn, flatten (features 0, 1 are channel 0; 2, 3 channel 1), linear:1.
        // p = conv W [w0, w1], b [b0, b1], bn γ [g0, g1], β [e0, e1], linear W [l0, l1, l2, l3], b [c] = 1 … 13.
        var network = new SequentialNetwork([1, 1, 2], [new Conv2dLayer(2, 1), new BatchNormLayer([0.1, 0.2], [1.5, 2.5]), new FlattenLayer(), new LinearLayer(1)]);
        double[] p = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        var swapped = new UnitPermutation([[1, 0]]).Apply(new NetworkPoint(network, p));
        Assert.Equal([2, 1, 4, 3, 6, 5, 8, 7, 11, 12, 9, 10, 13], swapped.Parameters);
        var bn = Assert.Single(BatchNorms(swapped.Network));
        Assert.Equal([0.2, 0.1], bn.RunningMean!);
        Assert.Equal([2.5, 1.5], bn.RunningVar!);
        Assert.Throws<ArgumentException>(() => new UnitPermutation([[0, 0]]).Apply(new NetworkPoint(network, p)));
        Assert.Throws<ArgumentException>(() => new UnitPermutation([[1, 0]]).Apply(new NetworkPoint(network, p[1..])));
    }

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Weight_Matching_Recovers_A_Known_Permutation_Of_A_Cnn_With_Batch_Norm(string spec, int[] shape)
    {
        var network = Network(spec, shape);
        var a = new NetworkPoint(network, Point(network, 2));
        var pi = UnitPermutation.Random(network, 5);
        var b = pi.Apply(a);
        // B's statistics are A's permuted: the same architecture only up to the permutation.
        Assert.Throws<LandscapeInputException>(() => EndpointCheck.RequireSameArchitecture(a, b));

        var result = WeightMatching.Align(a, b, seed: 3);

        Assert.Equal(SolverStatus.Converged, result.Status);
        Assert.Equal(pi.Inverse().Layers, result.Permutation.Layers);
        double gap = a.Parameters.Zip(result.AlignedB, (u, v) => Math.Abs(u - v)).Max();
        Assert.True(gap <= Tolerances.RecoveredAlignment, $"max|A − π(B)| = {gap:G3}");
        Assert.Null(EndpointCheck.Difference(a.Network, result.AlignedNetwork));
        Assert.True(result.ObjectiveAfter > result.ObjectiveBefore);
        Assert.True(result.DistanceAfter <= Tolerances.RecoveredAlignment && result.DistanceBefore > 0.1);
    }

    [Fact]
    public void Weight_Matching_Of_Independent_Cnns_Raises_The_Objective_And_Keeps_Bs_Function()
    {
        var network = Network("conv:4:3:1:1,bn,relu,pool:2,conv:6:3:1:1,tanh,bn,avgpool:2,flatten,linear:5,relu,linear", [1, 8, 8]);
        var other = Network("conv:4:3:1:1,bn,relu,pool:2,conv:6:3:1:1,tanh,bn,avgpool:2,flatten,linear:5,relu,linear", [1, 8, 8], seed: 1);
        for (int seed = 0; seed < 3; seed++)
        {
            var a = new NetworkPoint(network, Point(network, 10 + seed));
            var b = new NetworkPoint(other, Point(other, 20 + seed));
            var result = WeightMatching.Align(a, b, seed);
            Assert.Equal(SolverStatus.Converged, result.Status);
            Assert.True(result.Steps >= 1, "independent networks are not aligned at π = id");
            Assert.Equal(WeightMatching.Objective(a.Parameters, result.AlignedB), result.ObjectiveAfter);
            Assert.True(result.DistanceAfter < result.DistanceBefore);
            var aligned = new NetworkPoint(result.AlignedNetwork, result.AlignedB);
            Assert.Equal(result.Permutation.Apply(b).Parameters, aligned.Parameters);
            AssertSameFunction(b, aligned);
            // Coordinate descent ends at a point no layer step improves; random permutations do not beat it.
            var rng = new Random(seed);
            for (int r = 0; r < 20; r++)
            {
                var random = UnitPermutation.Random(other, rng.Next());
                Assert.True(WeightMatching.Objective(a.Parameters, random.Apply(b).Parameters) <= result.ObjectiveAfter);
            }
        }
    }

    [Fact]
    public void Cli_Permute_Writes_A_Seq_File_Of_The_Same_Function()
    {
        var network = Network("conv:4:3,bn,relu,pool:2,conv:6:3,tanh,flatten,linear:5,relu,linear", [1, 8, 8]);
        var a = new NetworkPoint(network, Point(network, 4));
        ModelFile.Save(P("a.json"), a);

        var (code, output, err) = CliTests.Run("permute", "--model", P("a.json"), "--seed", "9", "--out", P("b.json"), "--json", P("permute.json"));

        Assert.True(code == 0, output + err);
        Assert.Contains("layer 5 conv:6:3:1:0", output, StringComparison.Ordinal);
        var b = ModelFile.Load(P("b.json"));
        Assert.IsType<SequentialNetwork>(b.Network);
        Assert.Contains(ModelFile.SeqFormat, File.ReadAllText(P("b.json")), StringComparison.Ordinal);
        var pi = UnitPermutation.Random(network, 9);
        var expected = pi.Apply(a);
        Assert.Equal(expected.Parameters, b.Parameters);
        Assert.Null(EndpointCheck.Difference(expected.Network, b.Network));
        AssertSameFunction(a, b);
        using var doc = JsonDocument.Parse(File.ReadAllText(P("permute.json")));
        var root = doc.RootElement;
        Assert.Equal(network.ParameterCount, root.GetProperty("n").GetInt32());
        Assert.Equal([4, 6, 5], root.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(["layer 1 conv:4:3:1:0", "layer 5 conv:6:3:1:0", "layer 8 linear:5"], root.GetProperty("names").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(pi.Layers, root.GetProperty("permutation").EnumerateArray().Select(l => l.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray());
    }

    [Fact]
    public void Cli_Connect_Aligns_Two_Seq_Networks_By_Weight_Matching()
    {
        const string Spec = "conv:4:3,bn,relu,pool:2,conv:6:3,tanh,flatten,linear:5,relu,linear";
        var network = Network(Spec, [1, 8, 8]);
        ModelFile.Save(P("a.json"), new NetworkPoint(network, Point(network, 1)));
        var (code, output, err) = CliTests.Run("permute", "--model", P("a.json"), "--seed", "3", "--out", P("b.json"));
        Assert.True(code == 0, output + err);

        // A against π(A): weight matching maps π(A) back onto A exactly, statistics included; there is no path to find.
        (code, output, err) = CliTests.Run("connect", "--model", P("a.json"), "--to", P("b.json"), "--data", Digits40, "--method", "linear",
            "--align", "weight-matching", "--json", P("same.json"));
        Assert.True(code == 0, output + err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("same.json"))))
        {
            Assert.Equal(0.0, doc.RootElement.GetProperty("alignment").GetProperty("distanceAfter").GetDouble());
        }
        // Without the alignment, π(A)'s permuted statistics make it another network.
        (code, _, err) = CliTests.Run("connect", "--model", P("a.json"), "--to", P("b.json"), "--data", Digits40, "--method", "linear");
        Assert.Equal(2, code);
        Assert.Contains("the batch-norm statistics differ", err, StringComparison.Ordinal);

        // Two independent points of a network with a fresh layer's statistics (μ = 0, σ² = 1, as init and train leave them),
        // which a permutation does not change: aligned, then joined by the straight line.
        var fresh = ArchitectureSpec.Build(Spec, [1, 8, 8], 10);
        ModelFile.Save(P("fa.json"), new NetworkPoint(fresh, Point(fresh, 1)));
        ModelFile.Save(P("fc.json"), new NetworkPoint(fresh, Point(fresh, 2)));
        (code, output, err) = CliTests.Run("connect", "--model", P("fa.json"), "--to", P("fc.json"), "--data", Digits40, "--method", "linear",
            "--align", "weight-matching", "--json", P("other.json"));
        Assert.True(code == 0, output + err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("other.json"))))
        {
            var alignment = doc.RootElement.GetProperty("alignment");
            Assert.True(alignment.GetProperty("distanceAfter").GetDouble() < alignment.GetProperty("distanceBefore").GetDouble());
            Assert.True(doc.RootElement.GetProperty("methods")[0].GetProperty("aligned").GetBoolean());
        }

        // An independent point of A's network, whose statistics vary by channel: the permutation weight matching finds moves
        // them, so π(B) is another network than A (the paths are measured on A's), refused in one line.
        ModelFile.Save(P("c.json"), new NetworkPoint(network, Point(network, 2)));
        (code, _, err) = CliTests.Run("connect", "--model", P("a.json"), "--to", P("c.json"), "--data", Digits40, "--method", "linear", "--align", "weight-matching");
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("the batch-norm statistics differ, A has the running mean, variance and eps of layer 2, π(B) has other values", err, StringComparison.Ordinal);
    }
}
