using System.Globalization;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Packaging;

/// <summary>What <see cref="ConsumerProgram.Compute"/> found: the dtype of a module built after the first library call, and a loss.</summary>
public sealed record ConsumerResult(ScalarType DtypeAtCreation, double Loss);

/// <summary>
/// The program of the consumer projects that <see cref="PackagingTests"/> builds outside the repository: this file is
/// copied into them, and the test runs <see cref="Compute"/> in-process too, so both compute the same thing.
/// </summary>
public static class ConsumerProgram
{
    /// <summary>Prints what <see cref="Compute"/> found and how TorchSharp's native library was loaded, one <c>key=value</c> a line.</summary>
    public static void PrintResult()
    {
        var result = Compute();
        Console.WriteLine($"dtype={result.DtypeAtCreation}");
        Console.WriteLine($"loss={result.Loss.ToString("R", CultureInfo.InvariantCulture)}");
        Console.WriteLine($"route={TorchRuntime.NativeLibraryRoute}");
        Console.WriteLine($"library={TorchRuntime.NativeLibraryPath}");
    }

    /// <summary>
    /// Makes a dataset of five points (the library's first use, which sets TorchSharp up), builds an nn.Sequential
    /// 2 → 4 → 1 (tanh), sets its parameters to 0.5·sin(k + 1), k = 0, 1, … in <c>parameters()</c> order, and computes
    /// L = Σ(f(xᵢ) − yᵢ)² through <see cref="LossLandscape.Problem.ResidualMap"/>.
    /// </summary>
    public static ConsumerResult Compute()
    {
        var data = new Dataset(
            new double[,] { { 0.0, 1.0 }, { 1.0, 0.5 }, { -1.0, 2.0 }, { 0.25, -0.75 }, { 2.0, 0.0 } },
            new double[,] { { 0.3 }, { -0.2 }, { 0.9 }, { 0.1 }, { -0.6 } });
        // No call to TorchRuntime: the Dataset set TorchSharp's default dtype to float64.
        var net = nn.Sequential(("hidden", nn.Linear(2, 4)), ("tanh", nn.Tanh()), ("output", nn.Linear(4, 1)));
        var dtype = net.parameters().First().dtype;
        using (no_grad())
        {
            int k = 0;
            foreach (var p in net.parameters())
            {
                var values = Enumerable.Range(k, (int)p.numel()).Select(j => 0.5 * Math.Sin(j + 1)).ToArray();
                p.copy_(tensor(values, p.shape, dtype: p.dtype));
                k += values.Length;
            }
        }
        var model = new ModuleModel(net, inputDim: 2, outputDim: 1);
        using var map = new LossLandscape.Problem.ResidualMap(model, data);
        return new ConsumerResult(dtype, map.Loss());
    }
}
