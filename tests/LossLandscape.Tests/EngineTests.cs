using LossLandscape.Engine;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class EngineTests
{
    [Fact]
    public void TorchSharp_Loads_And_Takes_A_Second_Derivative()
    {
        TorchRuntime.EnsureInitialized();
        Assert.Equal(ScalarType.Float64, get_default_dtype());
        using var scope = NewDisposeScope();
        var x = tensor(new[] { 1.0, 2.0, -3.0 }, requires_grad: true);
        var y = (x.pow(3) + x.sin()).sum();
        var g = autograd.grad([y], [x], create_graph: true, retain_graph: true)[0];
        var h = autograd.grad([g.sum()], [x])[0].data<double>().ToArray();
        // d²/dx² (x³ + sin x) = 6x − sin x.
        double[] xs = [1.0, 2.0, -3.0];
        for (int k = 0; k < 3; k++)
        {
            Assert.Equal(6 * xs[k] - Math.Sin(xs[k]), h[k], Tolerances.ClosedForm);
        }
    }
}
