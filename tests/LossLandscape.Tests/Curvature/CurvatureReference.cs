using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Curvature;

/// <summary>Dense references for the curvature tests, built independently of the operators under test.</summary>
internal static class CurvatureReference
{
    /// <summary>
    /// ∇²L of L = Σ|f_p(xᵢ) − yᵢ|^a, built here from the network's forward pass alone: the gradient with create_graph, then one
    /// reverse pass per entry of it (row k = ∇(∂L/∂p_k)).
    /// </summary>
    public static Tensor Hessian(FeedforwardNetwork network, double[] parameters, Dataset data, double a = 2.0)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var p = tensor(parameters).requires_grad_(true);
        var h = network.Forward(p, data.InputsTensor()) - data.TargetsTensor();
        var loss = a == 2.0 ? h.mul(h).sum() : h.abs().pow(a).sum();
        var g = autograd.grad([loss], [p], retain_graph: true, create_graph: true)[0];
        int n = parameters.Length;
        var hessian = zeros(n, n, dtype: float64);
        for (int k = 0; k < n; k++)
        {
            using var rowScope = NewDisposeScope();
            if (!g.requires_grad)
            {
                break;
            }
            var row = autograd.grad([g[k]], [p], retain_graph: true, allow_unused: true)[0];
            if (row is not null && !row.IsInvalid)
            {
                hessian[k].copy_(row);
            }
        }
        return hessian.MoveToOuterDisposeScope();
    }

    /// <summary>∇²L by central differences of the exact gradient ∇L (<see cref="ResidualMap.Gradient"/>), symmetrised.</summary>
    public static Tensor HessianByGradientDifferences(ResidualMap map, double step)
    {
        using var scope = NewDisposeScope();
        // A copy: for a single leaf, ParameterVector.Get can alias the leaf's storage.
        var p0 = ParameterVector.Get(map.Model).clone();
        int n = map.ParameterCount;
        var hessian = zeros(n, n, dtype: float64);
        try
        {
            for (int k = 0; k < n; k++)
            {
                using var columnScope = NewDisposeScope();
                var e = zeros(n, dtype: float64);
                e[k] = tensor(step);
                ParameterVector.Set(map.Model, p0 + e);
                var plus = map.Gradient();
                ParameterVector.Set(map.Model, p0 - e);
                var minus = map.Gradient();
                hessian.select(1, k).copy_((plus - minus) / (2 * step));
            }
        }
        finally
        {
            ParameterVector.Set(map.Model, p0);
        }
        return ((hessian + hessian.t()) / 2).MoveToOuterDisposeScope();
    }

    /// <summary>max|A − B| / max|A|.</summary>
    public static double Relative(Tensor expected, Tensor actual)
    {
        using var scope = NewDisposeScope();
        double scale = Math.Max(expected.abs().max().item<double>(), 1e-300);
        return (expected - actual).abs().max().item<double>() / scale;
    }

    /// <summary>Q diag(λ) Qᵀ with Q a seeded random orthogonal matrix: a symmetric matrix with known spectrum.</summary>
    public static Tensor WithSpectrum(double[] eigenvalues, int seed)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        int n = eigenvalues.Length;
        var rng = new Random(seed);
        var g = tensor(SeededNormal.Vector(rng, n * n), dtype: float64).reshape(n, n);
        var (q, _) = linalg.qr(g);
        var a = q.mm(diag(tensor(eigenvalues, dtype: float64))).mm(q.t());
        return ((a + a.t()) / 2).MoveToOuterDisposeScope();
    }
}
