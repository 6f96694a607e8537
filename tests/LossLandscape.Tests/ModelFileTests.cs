using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Models;
using LossLandscape.Models.Activations;

namespace LossLandscape.Tests;

public class ModelFileTests
{
    private static readonly double[] Awkward =
    [
        -0.0, 0.0, double.Epsilon, -double.Epsilon, 2.2250738585072009e-308, double.MaxValue, double.MinValue,
        0.1, 1.0 / 3.0, -2.718281828459045, 1e-300, 123456789.123456789,
    ];

    [Fact]
    public void Mlp_Round_Trip_Is_Bit_Exact()
    {
        var mlp = new Mlp(3, [new HiddenLayer(4, new SmooLU()), new HiddenLayer(2, new RectifiedTanh())], 2)
            .WithScaling(new InputScaling([0.1, -0.0, 1.0 / 7.0], [3.0, 1e-3, 5e-324]));
        var p = mlp.InitialParameters(seed: 5);
        Awkward.CopyTo(p, 0);
        var text = ModelFile.Serialize(new NetworkPoint(mlp, p));
        var back = ModelFile.Parse(text, "test");
        Assert.Equal(Bits(p), Bits(back.Parameters));
        Assert.Equal(Bits(mlp.Scaling!.Shift), Bits(back.Network.Scaling!.Shift));
        Assert.Equal(Bits(mlp.Scaling!.Scale), Bits(back.Network.Scaling!.Scale));
        Assert.Equal(text, ModelFile.Serialize(back));
    }

    [Fact]
    public void Mlp_File_Has_Exactly_The_Published_Shape()
    {
        var mlp = new Mlp(2, [new HiddenLayer(3, new SmooLU())], 1);
        var p = mlp.InitialParameters(seed: 1);
        using var doc = JsonDocument.Parse(ModelFile.Serialize(new NetworkPoint(mlp, p)));
        var root = doc.RootElement;
        Assert.Equal(["format", "inputDim", "hidden", "outputDim", "parameters"], root.EnumerateObject().Select(o => o.Name).ToArray());
        Assert.Equal("losslandscape.mlp/1", root.GetProperty("format").GetString());
        Assert.Equal(2, root.GetProperty("inputDim").GetInt32());
        Assert.Equal(3, root.GetProperty("hidden")[0].GetProperty("width").GetInt32());
        Assert.Equal("smoolu", root.GetProperty("hidden")[0].GetProperty("activation").GetString());
        Assert.Equal(13, root.GetProperty("parameters").GetArrayLength());
    }

    [Fact]
    public void Dag_Round_Trip_Is_Bit_Exact()
    {
        var dag = Cases.SharedDag(new RectifiedSigmoid(), 3);
        var p = Enumerable.Range(0, dag.ParameterCount).Select(k => Awkward[k % Awkward.Length] / (k + 1)).ToArray();
        var text = ModelFile.Serialize(new NetworkPoint(dag, p));
        var back = ModelFile.Parse(text, "test");
        var g = Assert.IsType<DagNetwork>(back.Network);
        Assert.Equal(dag.Edges, g.Edges);
        Assert.Equal(dag.Vertices.Select(v => (v.Kind, v.Bias, v.Activation?.Name)), g.Vertices.Select(v => (v.Kind, v.Bias, v.Activation?.Name)));
        Assert.Equal(Bits(p), Bits(back.Parameters));
        Assert.Equal(text, ModelFile.Serialize(back));
    }

    private static long[] Bits(double[] values) => values.Select(BitConverter.DoubleToInt64Bits).ToArray();
}
