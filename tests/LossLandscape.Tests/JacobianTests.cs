using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class JacobianTests
{
    public static TheoryData<string> CaseNames() => Cases.Names();

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void Batched_Jacobian_Equals_Autograd_And_Central_Differences(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var map = new ResidualMap(model, c.Data);
        var batched = Reference.ToArray2(map.Jacobian(JacobianMethod.Batched));
        var autograd = Reference.ToArray2(map.Jacobian(JacobianMethod.Autograd));
        var fd = Reference.FiniteDifferenceJacobian(c.Network, c.Parameters, c.Data.InputsTensor(), Tolerances.FiniteDifferenceStep);

        Assert.Equal(c.Data.Count * c.Data.OutputDim, batched.GetLength(0));
        Assert.Equal(c.Network.ParameterCount, batched.GetLength(1));
        Assert.True(Reference.RelativeMaxDifference(autograd, batched) <= Tolerances.ExactAgreement, $"batched vs autograd: {Reference.RelativeMaxDifference(autograd, batched):e2}");
        Assert.True(Reference.RelativeMaxDifference(fd, batched) <= Tolerances.FiniteDifference, $"batched vs finite differences: {Reference.RelativeMaxDifference(fd, batched):e2}");
        // The case must exercise something: J is not identically zero.
        Assert.Contains(batched.Cast<double>(), v => v != 0);
    }

    [Fact]
    public void Batched_Jacobian_Does_Not_Depend_On_Batch_Size()
    {
        var c = Cases.Get("mlp 3-4-3-3 smoolu/smoolu scaled");
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        var whole = new ResidualMap(model, c.Data).Jacobian();
        var pieces = new ResidualMap(model, c.Data, batchSize: 3).Jacobian();
        Assert.True((whole - pieces).abs().max().item<double>() <= Tolerances.ExactAgreement);
    }

    [Fact]
    public void Generic_Path_Works_For_Any_TorchSharp_Module()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        manual_seed(3);
        var module = nn.Sequential(("l1", nn.Linear(3, 6)), ("act", nn.Tanh()), ("l2", nn.Linear(6, 2)));
        var model = new ModuleModel(module, 3, 2);
        var data = Cases.Data(5, 3, 2, 9);
        var jac = Reference.ToArray2(new ResidualMap(model, data).Jacobian());
        // Reference: the same network as an Mlp with the module's parameters in the file layout.
        var p = ParameterVector.Get(model).data<double>().ToArray();
        var mlp = new Mlp(3, [new HiddenLayer(6, Models.Activations.ActivationRegistry.Get("tanh"))], 2);
        var fd = Reference.FiniteDifferenceJacobian(mlp, p, data.InputsTensor(), Tolerances.FiniteDifferenceStep);
        Assert.Equal(model.ParameterCount, mlp.ParameterCount);
        Assert.True(Reference.RelativeMaxDifference(fd, jac) <= Tolerances.FiniteDifference);
    }
}
