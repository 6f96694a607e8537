using LossLandscape.Engine;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>Dense references built independently of the code under test.</summary>
internal static class Reference
{
    /// <summary>J by central differences of the network outputs, row i·ℓ + j, column k.</summary>
    public static double[,] FiniteDifferenceJacobian(FeedforwardNetwork network, double[] p, Tensor inputs, double h)
    {
        TorchRuntime.EnsureInitialized();
        int rows = (int)inputs.shape[0] * network.OutputDim;
        var jac = new double[rows, p.Length];
        for (int k = 0; k < p.Length; k++)
        {
            using var scope = NewDisposeScope();
            var plus = (double[])p.Clone();
            var minus = (double[])p.Clone();
            plus[k] += h;
            minus[k] -= h;
            var fp = network.Forward(tensor(plus), inputs).reshape(-1).data<double>().ToArray();
            var fm = network.Forward(tensor(minus), inputs).reshape(-1).data<double>().ToArray();
            for (int r = 0; r < rows; r++)
            {
                jac[r, k] = (fp[r] - fm[r]) / (2 * h);
            }
        }
        return jac;
    }

    /// <summary>A tensor's entries as a 2-D array.</summary>
    public static double[,] ToArray2(Tensor t)
    {
        var flat = t.contiguous().data<double>().ToArray();
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        var a = new double[rows, cols];
        Buffer.BlockCopy(flat, 0, a, 0, flat.Length * sizeof(double));
        return a;
    }

    /// <summary>max |a − b| / max(max |a|, tiny).</summary>
    public static double RelativeMaxDifference(double[,] a, double[,] b)
    {
        Assert.Equal(a.GetLength(0), b.GetLength(0));
        Assert.Equal(a.GetLength(1), b.GetLength(1));
        double diff = 0, scale = 1e-300;
        for (int i = 0; i < a.GetLength(0); i++)
        {
            for (int j = 0; j < a.GetLength(1); j++)
            {
                diff = Math.Max(diff, Math.Abs(a[i, j] - b[i, j]));
                scale = Math.Max(scale, Math.Abs(a[i, j]));
            }
        }
        return diff / scale;
    }
}
