using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class ResidualMapTests
{
    [Theory]
    [InlineData(2.0)]
    [InlineData(1.0)]
    [InlineData(3.5)]
    public void Loss_Is_The_Sum_Of_Powers_Of_The_Residuals(double a)
    {
        var c = Cases.Get("mlp 3-5-3 softplus");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data, a);
        var f = c.Network.Forward(tensor(c.Parameters), c.Data.InputsTensor()).data<double>().ToArray();
        double expected = 0;
        for (int i = 0; i < c.Data.Count; i++)
        {
            for (int j = 0; j < c.Data.OutputDim; j++)
            {
                double h = f[i * c.Data.OutputDim + j] - c.Data.Target(i, j);
                expected += Math.Pow(Math.Abs(h), a);
                Assert.Equal(h, map.Residuals()[i * c.Data.OutputDim + j].item<double>(), Tolerances.SameResidual);
            }
        }
        Assert.Equal(expected, map.Loss(), expected * Tolerances.ClosedForm);
        Assert.Equal(3 * c.Data.Count, map.Constraints);
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(1.0)]
    public void Gradient_Equals_a_Jt_Of_Signed_Powers_And_Is_Batch_Independent(double a)
    {
        var c = Cases.Get("dag shared smoolu ℓ=3");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data, a);
        // ∇L = Jᵀ·(a·sign(H)|H|^{a−1}).
        var h = map.Residuals();
        var weight = a * h.sign() * h.abs().pow(a - 1);
        var expected = map.Jacobian().t().matmul(weight);
        var g = map.Gradient();
        var scale = expected.abs().max().item<double>();
        Assert.True((g - expected).abs().max().item<double>() <= Tolerances.ExactAgreement * scale);
        var batched = new ResidualMap(model, c.Data, a, batchSize: 4).Gradient();
        Assert.True((g - batched).abs().max().item<double>() <= Tolerances.ExactAgreement * scale);
    }

    [Fact]
    public void Standardized_Model_Is_A_Function_Of_The_Raw_Inputs()
    {
        TorchRuntime.EnsureInitialized();
        var data = DatasetLoader.Load("builtin:diabetes", TargetSpec.LastColumn).Take(30);
        var scaling = InputScaling.Standardize(data);
        var plain = new Mlp(data.InputDim, [new HiddenLayer(5, new Models.Activations.SmooLU())], 1);
        var scaled = plain.WithScaling(scaling);
        var p = plain.InitialParameters(seed: 8);
        using var scope = NewDisposeScope();
        var viaModel = scaled.Forward(tensor(p), data.InputsTensor());
        var viaData = plain.Forward(tensor(p), scaling.Apply(data).InputsTensor());
        Assert.True((viaModel - viaData).abs().max().item<double>() <= Tolerances.ScalingFolded);
        var standardized = scaling.Apply(data);
        for (int j = 0; j < data.InputDim; j++)
        {
            double mean = Enumerable.Range(0, data.Count).Average(i => standardized.Input(i, j));
            Assert.Equal(0.0, mean, Tolerances.ExactAgreement);
        }
    }

    [Fact]
    public void Mismatched_Data_Is_Rejected_With_The_Sizes()
    {
        var c = Cases.Get("mlp 3-5-1 relu");
        using var model = new NetworkModel(c.Network, c.Parameters);
        var wrong = Cases.Data(4, 3, 2, 1);
        var e = Assert.Throws<LandscapeInputException>(() => new ResidualMap(model, wrong));
        Assert.Contains("2 targets", e.Message);
    }
}
