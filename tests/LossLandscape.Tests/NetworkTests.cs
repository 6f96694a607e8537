using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class NetworkTests
{
    [Theory]
    [InlineData("smoolu")]
    [InlineData("relu")]
    [InlineData("rectified-sigmoid")]
    [InlineData("softplus")]
    public void Dag_Built_From_An_Mlp_Gives_Identical_Outputs(string activation)
    {
        TorchRuntime.EnsureInitialized();
        var sigma = ActivationRegistry.Get(activation);
        var mlp = new Mlp(4, [new HiddenLayer(6, sigma), new HiddenLayer(5, new SmooLU()), new HiddenLayer(3, sigma)], 3)
            .WithScaling(new Data.InputScaling([1, 2, 3, 4], [2, 2, 0.5, 1]));
        var dag = DagNetwork.FromMlp(mlp);
        Assert.Equal(mlp.ParameterCount, dag.ParameterCount);
        var p = mlp.InitialParameters(seed: 4);
        var x = Cases.Data(20, 4, 1, 4).InputsTensor();
        using var scope = NewDisposeScope();
        var a = mlp.Forward(tensor(p), x).data<double>().ToArray();
        var b = dag.Forward(tensor(p), x).data<double>().ToArray();
        Assert.Equal(a, b);
    }

    [Fact]
    public void Mlp_Follows_The_File_Layout_W_Then_b_Per_Layer()
    {
        TorchRuntime.EnsureInitialized();
        // p = 2 inputs, one hidden unit (ReLU), one output: n = (1·2 + 1) + (1·1 + 1) = 5.
        var mlp = new Mlp(2, [new HiddenLayer(1, new Relu())], 1);
        Assert.Equal(5, mlp.ParameterCount);
        double[] p = [2.0, -1.0, 0.5, 3.0, 0.25]; // W1 = [2, −1], b1 = 0.5, W2 = 3, b2 = 0.25
        using var scope = NewDisposeScope();
        var f = mlp.Forward(tensor(p), tensor(new double[] { 1.0, 0.5 }, [1, 2])).item<double>();
        Assert.Equal(3.0 * Math.Max(2.0 - 0.5 + 0.5, 0) + 0.25, f);
    }

    [Fact]
    public void Shared_Labels_Accumulate_In_The_Jacobian_Column()
    {
        TorchRuntime.EnsureInitialized();
        // One hidden vertex h = relu(w·x0 + w·x1) with the same label w on both edges, output y = v·h.
        var vertices = new[] { new DagVertex(DagVertexKind.Hidden, null, new Relu()), new DagVertex(DagVertexKind.Output, null) };
        var edges = new[] { new DagEdge(0, 2, 0), new DagEdge(1, 2, 0), new DagEdge(2, 3, 1) };
        var dag = new DagNetwork(2, vertices, edges, 2);
        using var scope = NewDisposeScope();
        var j = dag.Jacobian(tensor(new[] { 0.5, 2.0 }), tensor(new[] { 1.0, 3.0 }, [1, 2])).data<double>().ToArray();
        // ∂y/∂w = v·(x0 + x1) = 8, ∂y/∂v = h = 0.5·4 = 2.
        Assert.Equal(new[] { 8.0, 2.0 }, j);
    }

    [Fact]
    public void Dag_Rejects_A_Cycle_And_A_Label_Out_Of_Range()
    {
        var sigma = new SmooLU();
        var vertices = new[] { new DagVertex(DagVertexKind.Hidden, 0, sigma), new DagVertex(DagVertexKind.Hidden, 1, sigma), new DagVertex(DagVertexKind.Output, 2) };
        Assert.Throws<LandscapeInputException>(() => new DagNetwork(1, vertices, [new DagEdge(0, 1, 3), new DagEdge(1, 2, 4), new DagEdge(2, 1, 5), new DagEdge(2, 3, 6)], 7));
        Assert.Throws<LandscapeInputException>(() => new DagNetwork(1, vertices, [new DagEdge(0, 1, 3), new DagEdge(1, 2, 4), new DagEdge(2, 3, 9)], 7));
    }
}
