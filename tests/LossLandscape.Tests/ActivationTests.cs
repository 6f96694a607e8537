using LossLandscape.Engine;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class ActivationTests
{
    public static TheoryData<string> Names() => new(ActivationRegistry.Names);

    [Theory]
    [InlineData(1e-3)]
    [InlineData(1e-1)]
    [InlineData(50.0)]
    [InlineData(0.7)]
    public void SmooLU_And_Two_Derivatives_Match_Closed_Forms(double x)
    {
        TorchRuntime.EnsureInitialized();
        var s = new SmooLU();
        double e = Math.Exp(-1 / x);
        double[] expected = [x * e, e * (1 + 1 / x), e / (x * x * x)];
        var (value, first, second) = Autograd(s, x);
        double[] viaTensor = [value, first, second];
        double[] viaScalar = [s.Value(x), s.DerivativeValue(x), s.SecondDerivativeValue(x)];
        double[] viaClosed = [Eval(s.Apply, x), Eval(s.Derivative, x), Eval(s.SecondDerivative, x)];
        for (int k = 0; k < 3; k++)
        {
            double tol = Tolerances.ClosedForm * Math.Max(1, Math.Abs(expected[k]));
            Assert.Equal(expected[k], viaTensor[k], tol);
            Assert.Equal(expected[k], viaScalar[k], tol);
            Assert.Equal(expected[k], viaClosed[k], tol);
        }
    }

    [Fact]
    public void SmooLU_At_1e_1_Has_The_Known_Values()
    {
        // e^{−10} = 4.539992976248485e−5: σ = 4.54e−6, σ′ = 11·e^{−10}, σ″ = 1000·e^{−10}.
        var s = new SmooLU();
        Assert.Equal(4.539992976248485e-6, s.Value(0.1), Tolerances.SmooLUValueAtTenth);
        Assert.Equal(11 * 4.539992976248485e-5, s.DerivativeValue(0.1), Tolerances.SmooLUFirstDerivativeAtTenth);
        Assert.Equal(1000 * 4.539992976248485e-5, s.SecondDerivativeValue(0.1), Tolerances.SmooLUSecondDerivativeAtTenth);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void No_NaN_At_Zero_Or_Large_Arguments_Through_Double_Backward(string name)
    {
        TorchRuntime.EnsureInitialized();
        var sigma = ActivationRegistry.Get(name);
        foreach (double x in new[] { 0.0, -0.0, 1e6, -1e6, 1e-300, -1e-300, 5e-324, 1e300 })
        {
            var (v, d1, d2) = Autograd(sigma, x);
            Assert.True(double.IsFinite(v) && double.IsFinite(d1) && double.IsFinite(d2), $"{name} at {x}: {v}, {d1}, {d2}");
            Assert.True(double.IsFinite(Eval(sigma.Derivative, x)) && double.IsFinite(Eval(sigma.SecondDerivative, x)));
        }
    }

    [Fact]
    public void SmooLU_Without_Autograd_Equals_The_Autograd_Path_Bitwise()
    {
        // The in-place path (no gradient needed) must give exactly the values of the differentiable one, NaN included.
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        double[] xs = [-1e300, -2.0, -0.0, 0.0, SmooLU.Cutoff / 2, SmooLU.Cutoff, SmooLU.Cutoff * 1.0001, 1e-3, 0.1, 0.7, 50.0, 1e300, double.PositiveInfinity, double.NegativeInfinity, double.NaN];
        var s = new SmooLU();
        var lean = s.Apply(tensor(xs)).data<double>().ToArray();
        var graph = s.Apply(tensor(xs, requires_grad: true)).detach().data<double>().ToArray();
        Assert.Equal(graph.Select(BitConverter.DoubleToInt64Bits), lean.Select(BitConverter.DoubleToInt64Bits));
    }

    [Fact]
    public void Every_SmooLU_Derivative_Vanishes_At_Zero()
    {
        var s = new SmooLU();
        var (v, d1, d2) = Autograd(s, 0.0);
        Assert.Equal(0.0, v);
        Assert.Equal(0.0, d1);
        Assert.Equal(0.0, d2);
        Assert.Equal(0.0, s.DerivativeValue(1e-9));
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Closed_Form_Derivatives_Equal_Autograd(string name)
    {
        var sigma = ActivationRegistry.Get(name);
        foreach (double x in new[] { -2.5, -0.3, 0.02, 0.3, 1.7, 4.0 })
        {
            var (v, d1, d2) = Autograd(sigma, x);
            Assert.Equal(sigma.Value(x), v, Tolerances.AutogradValue);
            Assert.Equal(sigma.DerivativeValue(x), d1, Tolerances.AutogradFirstDerivative);
            Assert.Equal(sigma.SecondDerivativeValue(x), d2, Tolerances.AutogradSecondDerivative);
            Assert.Equal(Eval(sigma.Derivative, x), d1, Tolerances.AutogradFirstDerivative);
            Assert.Equal(Eval(sigma.SecondDerivative, x), d2, Tolerances.AutogradSecondDerivative);
        }
    }

    [Theory]
    [InlineData("smoolu", true, true)]
    [InlineData("relu", true, false)]
    [InlineData("softplus", false, true)]
    [InlineData("tanh", false, true)]
    [InlineData("sigmoid", false, true)]
    [InlineData("rectified-tanh", true, false)]
    [InlineData("rectified-sigmoid", true, false)]
    public void Flags_Follow_Definition_3_1(string name, bool rectified, bool smooth)
    {
        var sigma = ActivationRegistry.Get(name);
        Assert.Equal(rectified, sigma.IsRectified);
        Assert.Equal(smooth, sigma.IsSmooth);
        if (rectified)
        {
            // Definition 3.1: zero on x ≤ 0, increasing on x > 0.
            Assert.All(new[] { -5.0, -1e-3, 0.0 }, x => Assert.Equal(0.0, sigma.Value(x)));
            Assert.True(sigma.Value(0.5) < sigma.Value(1.0) && sigma.Value(1.0) < sigma.Value(2.0));
        }
    }

    [Fact]
    public void Rectified_Tanh_And_Sigmoid_Are_Translated_And_Truncated()
    {
        Assert.Equal(Math.Tanh(0.8), ActivationRegistry.Get("rectified-tanh").Value(0.8), Tolerances.SameOperations);
        Assert.Equal(1 / (1 + Math.Exp(-0.8)) - 0.5, ActivationRegistry.Get("rectified-sigmoid").Value(0.8), Tolerances.SameOperations);
    }

    private static double Eval(Func<Tensor, Tensor> f, double x)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        return f(tensor(new[] { x })).data<double>()[0];
    }

    private static (double Value, double First, double Second) Autograd(Activation sigma, double x)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var t = tensor(new[] { x }, requires_grad: true);
        var y = sigma.Apply(t).sum();
        var g = autograd.grad([y], [t], create_graph: true, retain_graph: true)[0];
        double first = g.data<double>()[0];
        double second = g.requires_grad ? autograd.grad([g.sum()], [t], allow_unused: true)[0] is { } h && h.numel() > 0 ? h.data<double>()[0] : 0.0 : 0.0;
        return (y.item<double>(), first, second);
    }
}
