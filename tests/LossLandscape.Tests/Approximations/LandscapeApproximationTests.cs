using LossLandscape.Approximations;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Approximations;

/// <summary>The front door's approximations (<see cref="Landscape"/>): the same operators and reports as the library's entry points, usable from C# for Laplace and influence functions.</summary>
public sealed class LandscapeApproximationTests
{
    [Fact]
    public void The_Front_Door_Gives_The_Approximations_And_Their_Damped_Inverses()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var c = Cases.Get("mlp 3-4-3-3 tanh/smoolu scaled");
        using var landscape = Landscape.For(new NetworkPoint(c.Network, c.Parameters), c.Data);
        using var kfac = landscape.Kfac();
        using var reference = KfacOperator.Create(landscape.Map);
        Assert.Equal(0.0, ApproximationReference.Relative(reference.ToDense(), kfac.ToDense()));
        using var ekfac = landscape.Ekfac();
        using var diagonal = landscape.GaussNewtonDiagonal();
        using var blocks = landscape.BlockDiagonal(CurvatureKind.GaussNewton);
        // Influence-function style: (A + λI)⁻¹∇L for each, and the Laplace log-determinant, finite and consistent: A(A + λI)⁻¹g + λ(A + λI)⁻¹g = g.
        var gradient = tensor(landscape.Gradient());
        foreach (var op in new LinearOperator[] { kfac, ekfac, diagonal, blocks })
        {
            var solved = ((IDampedInverse)op).DampedInverseTimes(gradient, 1.0);
            var back = op.Apply(solved).add(solved);
            Assert.True(ApproximationReference.Relative(gradient, back) <= Tolerances.DampedInverse, op.GetType().Name);
            Assert.True(double.IsFinite(((IDampedInverse)op).DampedLogDeterminant(1.0)));
        }
        var report = landscape.Approximations(new ApproximationOptions([ApproximationKind.Kfac, ApproximationKind.Ekfac], K: 2));
        Assert.Equal(["kfac", "ekfac"], report.Approximations.Select(a => a.Kind));
        var perLayer = landscape.PerLayer(new PerLayerOptions(CurvatureKind.GaussNewton, K: 1));
        Assert.Equal(3, perLayer.Layers.Count);
        // Each layer's trace of G is that of its block of KFAC's exact counterpart, the GGN's block diagonal: within 4 standard errors.
        var dense = blocks.ToDense();
        foreach (var layer in perLayer.Layers)
        {
            double exact = dense.narrow(0, layer.Offset, layer.Count).narrow(1, layer.Offset, layer.Count).trace().item<double>();
            Assert.True(Math.Abs(layer.Trace - exact) <= (Tolerances.StandardErrors * layer.TraceStandardError) + (Tolerances.SecondOrderAgreement * Math.Abs(exact)), $"{layer.Layer}: {layer.Trace} ± {layer.TraceStandardError} vs {exact}");
        }
    }
}
