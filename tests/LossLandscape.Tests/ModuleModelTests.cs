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

    /// <summary>A module with a layer that computes differently in training mode, built (and left) in training mode.</summary>
    public static TheoryData<string> ModeDependentLayers() => ["dropout", "alpha-dropout", "batch-norm"];

    private static nn.Module<Tensor, Tensor> Layer(string kind) => kind switch
    {
        "dropout" => nn.Dropout(0.5),
        "alpha-dropout" => nn.AlphaDropout(0.5),
        "batch-norm" => nn.BatchNorm1d(6),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>
    /// Issue 19 §7: a module with dropout or batch norm handed over in training mode is evaluated in eval mode: L is the
    /// same at every call and for every batch size, equal to the module's own eval-mode output, no buffer moves, and
    /// <see cref="ModuleModel.Mode"/> names the layer.
    /// </summary>
    [Theory]
    [MemberData(nameof(ModeDependentLayers))]
    public void A_Module_In_Training_Mode_Is_Evaluated_In_Eval_Mode_And_Keeps_Its_Buffers(string kind)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        manual_seed(11);
        var data = Cases.Data(17, 3, 2, 5);
        var module = nn.Sequential(("l1", nn.Linear(3, 6)), ("mode", Layer(kind)), ("act", nn.Tanh()), ("l2", nn.Linear(6, 2)));
        Assert.True(module.training);
        using (no_grad())
        {
            for (int i = 0; i < 3; i++)
            {
                module.call(randn(9, 3, dtype: float64)); // training-mode calls: batch norm's running statistics move away from (0, 1)
            }
        }
        double[][] buffers = module.buffers().Select(b => b.to(float64).data<double>().ToArray()).ToArray();

        using var whole = Landscape.For(module, data);
        double first = whole.Map.Loss();
        double second = whole.Map.Loss();
        whole.Map.Gradient().Dispose();
        module.train(); // the caller switches it back: the next evaluation is still the eval-mode function
        double third = whole.Map.Loss();
        using var batched = Landscape.For(module, data, batchSize: 4);
        double inBatches = batched.Map.Loss();

        Assert.Equal(first, second);
        Assert.Equal(first, third);
        Assert.Equal(first, inBatches, Tolerances.ExactAgreement * first);
        Assert.Equal(buffers, module.buffers().Select(b => b.to(float64).data<double>().ToArray()).ToArray());

        // The reference: the module's own output in eval mode, L = Σ (f(x) − y)².
        module.eval();
        double expected;
        using (no_grad())
        {
            expected = module.call(data.InputsTensor()).sub(data.TargetsTensor()).square().sum().item<double>();
        }
        Assert.Equal(expected, first, Tolerances.ExactAgreement * expected);

        var mode = ((ModuleModel)whole.Model).Mode;
        Assert.True(mode.WasTraining);
        Assert.Contains("mode", mode.ModeDependentLayers);
        Assert.Contains("eval mode", mode.Describe());
    }
}
