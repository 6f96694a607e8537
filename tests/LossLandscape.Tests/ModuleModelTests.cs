using LossLandscape;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class ModuleModelTests
{
    private static Dataset Data() => Cases.Data(7, 3, 2, 17);

    [Fact]
    public void Float32_Module_Is_Converted_To_Float64_Exactly_And_Its_Loss_Is_The_Float64_Loss()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        manual_seed(3);
        // What a user gets who builds the module before the library sets float64 as the default.
        var module = nn.Sequential(("l1", nn.Linear(3, 5)), ("act", nn.Tanh()), ("l2", nn.Linear(5, 2))).to(ScalarType.Float32);
        double[][] before = module.parameters().Select(p => p.to(float64).data<double>().ToArray()).ToArray();

        var model = new ModuleModel(module, 3, 2);

        Assert.All(module.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        Assert.Equal(before, module.parameters().Select(p => p.data<double>().ToArray()).ToArray());
        Assert.All(model.Leaves, p => Assert.Equal(ScalarType.Float64, p.dtype));

        // The same values in a module built in float64: the loss agrees (it failed in libtorch before, "mat1 and mat2 must have the same dtype").
        var reference = nn.Sequential(("l1", nn.Linear(3, 5)), ("act", nn.Tanh()), ("l2", nn.Linear(5, 2))).to(ScalarType.Float64);
        using (no_grad())
        {
            foreach (var (p, values) in reference.parameters().Zip(before))
            {
                p.copy_(tensor(values, p.shape, dtype: float64));
            }
        }
        double loss = new ResidualMap(model, Data()).Loss();
        double expected = new ResidualMap(new ModuleModel(reference, 3, 2), Data()).Loss();
        Assert.Equal(expected, loss, Tolerances.ExactAgreement);
    }

    [Fact]
    public void Module_With_Complex_Parameters_Is_Refused_In_One_Line()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var module = nn.Sequential(("l1", nn.Linear(3, 2))).to(ScalarType.ComplexFloat64);
        var e = Assert.Throws<LandscapeInputException>(() => new ModuleModel(module, 3, 2));
        Assert.Contains("ComplexFloat64", e.Message);
        Assert.Contains("floating-point", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
