using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using LossLandscape.Paths;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Unit permutations of MLPs (<see cref="UnitPermutation"/>), weight matching (<see cref="WeightMatching"/>, Git Re-Basin §3.1),
/// the architecture check of two endpoints (<see cref="EndpointCheck"/>) and <c>landscape permute</c>.
/// </summary>
public sealed class AlignmentTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-align-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>p = 4 inputs (stored scaling), ℓ = 2 outputs; depth 1: one hidden layer of 12, depth 2: 10 then 8.</summary>
    private static Mlp Network(int depth, string activation)
    {
        var sigma = ActivationRegistry.Get(activation);
        int[] widths = depth == 1 ? [12] : [10, 8];
        return new Mlp(4, widths.Select(w => new HiddenLayer(w, sigma)).ToArray(), 2)
            .WithScaling(new InputScaling([0.5, -1, 2, 0], [2, 0.5, 3, 1]));
    }

    /// <summary>He initialization plus N(0, 0.3²) on every bias, so that permuting the biases is tested too.</summary>
    private static double[] Point(Mlp mlp, int seed)
    {
        var p = mlp.InitialParameters(seed);
        var rng = new Random(seed + 1000);
        foreach (var layer in mlp.Layers)
        {
            for (int i = 0; i < layer.Out; i++)
            {
                p[layer.BiasOffset + i] = 0.3 * ((rng.NextDouble() * 2) - 1);
            }
        }
        return p;
    }

    private static double[] Outputs(Mlp mlp, double[] p)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var x = Cases.Data(25, mlp.InputDim, mlp.OutputDim, 7).InputsTensor();
        return mlp.Forward(tensor(p), x).data<double>().ToArray();
    }

    /// <summary>max|f_p − f_q| ≤ <see cref="Tolerances.PermutedOutputs"/>·max(1, max|f_p|).</summary>
    private static void AssertSameFunction(Mlp mlp, double[] p, double[] q)
    {
        var fp = Outputs(mlp, p);
        var fq = Outputs(mlp, q);
        double scale = Math.Max(1, fp.Max(Math.Abs));
        double gap = fp.Zip(fq, (u, v) => Math.Abs(u - v)).Max();
        Assert.True(gap <= Tolerances.PermutedOutputs * scale, $"max|f_p − f_q| = {gap:G3}, max|f| = {scale:G3}");
    }

    public static TheoryData<int, string> DepthsAndActivations() => new()
    {
        { 1, "smoolu" }, { 1, "tanh" }, { 2, "smoolu" }, { 2, "tanh" },
    };

    [Theory]
    [MemberData(nameof(DepthsAndActivations))]
    public void Permuted_Network_Computes_The_Same_Outputs(int depth, string activation)
    {
        var mlp = Network(depth, activation);
        var a = Point(mlp, 1);
        var pi = UnitPermutation.Random(mlp, 11);
        Assert.False(pi.IsIdentity);
        var b = pi.Apply(mlp, a);
        // The permutation moved parameters (so the check below is not of a copy), only copied them, and is undone by π⁻¹.
        Assert.NotEqual(a, b);
        Assert.Equal(a.Order(), b.Order());
        Assert.Equal(a, pi.Inverse().Apply(mlp, b));
        // Not bit for bit: libtorch's matrix product rounds a row differently by where it falls in its kernel's tiles (one ulp
        // on the first hidden layer of the depth-2 networks here), so the outputs agree to rounding, not exactly.
        AssertSameFunction(mlp, a, b);
    }

    [Fact]
    public void Permutation_Moves_Rows_Of_A_Layer_And_Columns_Of_The_Next()
    {
        // One hidden layer of 2 units swapped: W₁ = [[1, 2], [3, 4]], b₁ = [5, 6], W₂ = [[7, 8]], b₂ = [9].
        var mlp = new Mlp(2, [new HiddenLayer(2, new SmooLU())], 1);
        double[] p = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        var swapped = new UnitPermutation([[1, 0]]).Apply(mlp, p);
        Assert.Equal([3, 4, 1, 2, 6, 5, 8, 7, 9], swapped);
    }

    [Fact]
    public void OrTools_Native_Assignment_Solver_Loads_And_Solves_A_Known_Problem()
    {
        // cost[i, u]: the diagonal is expensive, the anti-diagonal cheap; the optimum 2 → 0, 1 → 1, 0 → 2 costs 1 + 5 + 1 = 7
        // (the other five assignments cost 17, 17, 23, 25 and 25).
        long[,] cost = { { 9, 8, 1 }, { 8, 5, 8 }, { 1, 8, 9 } };
        using var assignment = new Google.OrTools.Graph.LinearSumAssignment();
        for (int i = 0; i < 3; i++)
        {
            for (int u = 0; u < 3; u++)
            {
                assignment.AddArcWithCost(i, u, cost[i, u]);
            }
        }
        Assert.Equal(Google.OrTools.Graph.LinearSumAssignment.Status.OPTIMAL, assignment.Solve());
        Assert.Equal(7, assignment.OptimalCost());
        Assert.Equal([2, 1, 0], Enumerable.Range(0, 3).Select(assignment.RightMate));
    }

    [Theory]
    [MemberData(nameof(DepthsAndActivations))]
    public void Weight_Matching_Recovers_A_Known_Permutation(int depth, string activation)
    {
        var mlp = Network(depth, activation);
        var a = Point(mlp, 2);
        var pi = UnitPermutation.Random(mlp, 5);
        Assert.False(pi.IsIdentity);
        var b = pi.Apply(mlp, a);

        var result = WeightMatching.Align(mlp, a, b, seed: 3);

        Assert.Equal(SolverStatus.Converged, result.Status);
        // π⁻¹(π(A)) = A: the permutation found is π⁻¹, layer by layer, and the aligned B is A.
        var inverse = pi.Inverse();
        for (int k = 0; k < mlp.Hidden.Count; k++)
        {
            Assert.Equal(inverse.Layers[k], result.Permutation.Layers[k]);
        }
        double gap = a.Zip(result.AlignedB, (u, v) => Math.Abs(u - v)).Max();
        Assert.True(gap <= Tolerances.RecoveredAlignment, $"max|A − π(B)| = {gap:G3}");
        Assert.True(result.ObjectiveAfter > result.ObjectiveBefore);
        Assert.True(result.DistanceAfter <= Tolerances.RecoveredAlignment && result.DistanceBefore > 0.1);
    }

    [Theory]
    [InlineData(1, "smoolu")]
    [InlineData(2, "tanh")]
    public void Weight_Matching_Never_Lowers_The_Objective(int depth, string activation)
    {
        var mlp = Network(depth, activation);
        for (int seed = 0; seed < 5; seed++)
        {
            var a = Point(mlp, 10 + seed);
            var b = Point(mlp, 20 + seed);
            var result = WeightMatching.Align(mlp, a, b, seed);
            Assert.Equal(SolverStatus.Converged, result.Status);
            Assert.True(result.Steps >= 1, "independent networks are not aligned at π = id");
            Assert.True(result.ObjectiveAfter >= result.ObjectiveBefore, $"seed {seed}: {result.ObjectiveAfter} < {result.ObjectiveBefore}");
            Assert.Equal(WeightMatching.Objective(a, result.AlignedB), result.ObjectiveAfter);
            Assert.True(result.DistanceAfter < result.DistanceBefore);
            // Coordinate descent ends at a point no layer step improves; random permutations do not beat it.
            var rng = new Random(seed);
            for (int r = 0; r < 20; r++)
            {
                var random = UnitPermutation.Random(mlp, rng.Next());
                Assert.True(WeightMatching.Objective(a, random.Apply(mlp, b)) <= result.ObjectiveAfter);
            }
        }
    }

    [Theory]
    [MemberData(nameof(DepthsAndActivations))]
    public void Aligned_Independent_Network_Computes_The_Same_Function(int depth, string activation)
    {
        var mlp = Network(depth, activation);
        var a = Point(mlp, 1);
        var b = Point(mlp, 2);
        var result = WeightMatching.Align(new NetworkPoint(mlp, a), new NetworkPoint(mlp, b), seed: 0);
        Assert.False(result.Permutation.IsIdentity);
        AssertSameFunction(mlp, b, result.AlignedB);
    }

    public static TheoryData<string, FeedforwardNetwork, string> Mismatches()
    {
        var sigma = new SmooLU();
        var scaling = new InputScaling([0.5, -1, 2, 0], [2, 0.5, 3, 1]);
        return new TheoryData<string, FeedforwardNetwork, string>
        {
            { "input", new Mlp(3, [new HiddenLayer(10, sigma), new HiddenLayer(8, sigma)], 2).WithScaling(new InputScaling([0, 0, 0], [1, 1, 1])), "the input dimensions differ" },
            { "widths", new Mlp(4, [new HiddenLayer(10, sigma), new HiddenLayer(9, sigma)], 2).WithScaling(scaling), "the hidden widths differ, A has hidden widths 10,8, B has hidden widths 10,9" },
            { "depth", new Mlp(4, [new HiddenLayer(10, sigma)], 2).WithScaling(scaling), "the hidden widths differ" },
            { "activation", new Mlp(4, [new HiddenLayer(10, sigma), new HiddenLayer(8, new Tanh())], 2).WithScaling(scaling), "the activations differ, A has activations smoolu,smoolu, B has activations smoolu,tanh" },
            { "outputs", new Mlp(4, [new HiddenLayer(10, sigma), new HiddenLayer(8, sigma)], 3).WithScaling(scaling), "the outputs differ" },
            { "no scaling", new Mlp(4, [new HiddenLayer(10, sigma), new HiddenLayer(8, sigma)], 2), "the input scalings differ, A has stored (x − shift)/scale, B has none" },
            { "other scaling", new Mlp(4, [new HiddenLayer(10, sigma), new HiddenLayer(8, sigma)], 2).WithScaling(new InputScaling([0.5, -1, 2, 0], [2, 0.5, 3, 2])), "the input scalings differ" },
            { "dag", DagNetwork.FromMlp(Network(2, "smoolu")), "the network kinds differ, A has an MLP (losslandscape.mlp/1), B has a DAG (losslandscape.dag/1)" },
        };
    }

    [Theory]
    [MemberData(nameof(Mismatches))]
    public void Different_Architectures_Are_Refused_In_One_Line_Naming_The_Difference(string name, FeedforwardNetwork other, string expected)
    {
        var mlp = Network(2, "smoolu");
        var a = new NetworkPoint(mlp, Point(mlp, 1));
        var b = new NetworkPoint(other, new double[other.ParameterCount]);
        var ex = Assert.Throws<LandscapeInputException>(() => EndpointCheck.RequireSameArchitecture(a, b));
        Assert.True(ex.Message.Contains(expected, StringComparison.Ordinal), $"{name}: {ex.Message}");
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Throws<LandscapeInputException>(() => WeightMatching.Align(a, b, seed: 0));
        // The same architecture passes.
        EndpointCheck.RequireSameArchitecture(a, new NetworkPoint(Network(2, "smoolu"), Point(mlp, 2)));
    }

    [Fact]
    public void Weight_Matching_And_Permutation_Refuse_A_Dag()
    {
        var dag = Cases.SharedDag(new SmooLU(), 1);
        var point = new NetworkPoint(dag, new double[dag.ParameterCount]);
        var ex = Assert.Throws<LandscapeInputException>(() => WeightMatching.Align(point, point, seed: 0));
        Assert.StartsWith("weight matching is for layered networks (losslandscape.mlp/1 or losslandscape.seq/1); this is a DAG", ex.Message);
        ex = Assert.Throws<LandscapeInputException>(() => UnitPermutation.PermutableLayers(dag, "unit permutation"));
        Assert.StartsWith("unit permutation is for layered networks", ex.Message);
    }

    [Fact]
    public void Cli_Permute_Writes_The_Same_Function_And_Its_Permutation()
    {
        var mlp = Network(2, "tanh");
        var a = Point(mlp, 4);
        string modelA = Path.Combine(_dir, "a.json");
        string modelB = Path.Combine(_dir, "b.json");
        string json = Path.Combine(_dir, "permute.json");
        ModelFile.Save(modelA, new NetworkPoint(mlp, a));

        var (code, output, err) = CliTests.Run("permute", "--model", modelA, "--seed", "9", "--out", modelB, "--json", json);

        Assert.True(code == 0, err);
        Assert.Contains("wrote", output);
        var b = ModelFile.Load(modelB);
        Assert.Null(EndpointCheck.Difference(mlp, b.Network));
        var pi = UnitPermutation.Random(mlp, 9);
        Assert.Equal(pi.Apply(mlp, a), b.Parameters);
        AssertSameFunction(mlp, a, b.Parameters);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal(mlp.ParameterCount, root.GetProperty("n").GetInt32());
        Assert.Equal([10, 8], root.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(9, root.GetProperty("seed").GetInt32());
        Assert.Equal(modelB, root.GetProperty("model").GetString());
        var layers = root.GetProperty("permutation").EnumerateArray().Select(l => l.EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
        Assert.Equal(pi.Layers, layers);
    }

    [Fact]
    public void Cli_Permute_Refuses_To_Overwrite_Its_Model_And_A_Dag()
    {
        var mlp = Network(1, "smoolu");
        string modelA = Path.Combine(_dir, "a.json");
        ModelFile.Save(modelA, new NetworkPoint(mlp, Point(mlp, 1)));
        string before = File.ReadAllText(modelA);

        var (code, output, err) = CliTests.Run("permute", "--model", modelA, "--seed", "1", "--out", Path.Combine(_dir, ".", "a.json"));
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("--out and --model name the same file", err); // the one output-versus-input check of every command
        Assert.Equal(before, File.ReadAllText(modelA));
        Assert.DoesNotContain("   at ", output + err);

        var dag = Cases.SharedDag(new SmooLU(), 1);
        string modelDag = Path.Combine(_dir, "dag.json");
        ModelFile.Save(modelDag, new NetworkPoint(dag, new double[dag.ParameterCount]));
        (code, _, err) = CliTests.Run("permute", "--model", modelDag, "--out", Path.Combine(_dir, "dag2.json"));
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("is for layered networks (losslandscape.mlp/1 or losslandscape.seq/1); this is a DAG", err);
    }
}
