using System.Text.Json;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Problem;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 21 §1 and §4: a TorchScript module saved by PyTorch 1.13 (scripted and traced; conv, batch norm with running
/// statistics, relu, max pool, conv, tanh, avg pool, flatten, linear), read as a <see cref="TorchScriptNetwork"/>, equals
/// PyTorch's own numbers in float64: the outputs, the cross-entropy and MSE losses (mean reductions), their gradients and one
/// Hessian-vector product each (double backward). The same network as a <c>losslandscape.seq/1</c> file equals both. The
/// fixtures and the numbers were written by <c>Fixtures/torchscript/make_torchscript.py</c> with Debian's python3-torch.
/// </summary>
public sealed class TorchScriptTests
{
    private static readonly string FixtureDirectory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
    private static readonly long[] Shape = [1, 8, 8];

    private static string Fixture(string name) => Path.Combine(FixtureDirectory, name);

    private sealed record Reference(string[] Names, int N, double[] Outputs, double CrossEntropy, double[] CrossEntropyGradient, double[] CrossEntropyHvp,
        double Mse, double[] MseGradient, double[] MseHvp, double[] V);

    private static Reference ReadReference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture("reference.json")));
        var r = doc.RootElement;
        double[] Numbers(string name) => r.GetProperty(name).EnumerateArray().Select(e => e.GetDouble()).ToArray();
        return new Reference(r.GetProperty("names").EnumerateArray().Select(e => e.GetString()!).ToArray(), r.GetProperty("n").GetInt32(), Numbers("outputs"),
            r.GetProperty("crossEntropy").GetDouble(), Numbers("crossEntropyGradient"), Numbers("crossEntropyHvp"),
            r.GetProperty("mse").GetDouble(), Numbers("mseGradient"), Numbers("mseHvp"), Numbers("v"));
    }

    private static double RelativeError(double[] a, double[] b)
    {
        Assert.Equal(b.Length, a.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < a.Length; i++)
        {
            diff += (a[i] - b[i]) * (a[i] - b[i]);
            norm += b[i] * b[i];
        }
        return Math.Sqrt(diff / Math.Max(norm, 1e-300));
    }

    public static TheoryData<string> Models => new() { "cnn_scripted.pt", "cnn_traced.pt", "cnn_seq.json" };

    [Theory]
    [MemberData(nameof(Models))]
    public void Outputs_Losses_Gradients_And_Hessian_Vector_Products_Equal_PyTorch(string file)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var reference = ReadReference();
        var point = ModelFile.Load(Fixture(file), Shape);
        Assert.Equal(reference.N, point.Network.ParameterCount);
        Assert.Equal(10, point.Network.OutputDim);
        Assert.Equal(Shape, point.Network.InputShape);
        using var data = ArrayFileSource.OpenNpz(Fixture("rows.npz"));
        Assert.Equal(10, data.OutputDim);
        using var model = point.ToModel();
        var (x, _) = data.Read(0, data.Count);
        var outputs = model.Forward(x).detach().reshape(-1).data<double>().ToArray();
        Assert.True(RelativeError(outputs, reference.Outputs) < 1e-12, $"outputs differ from PyTorch's by {RelativeError(outputs, reference.Outputs):E2}");

        var v = tensor(reference.V, dtype: ScalarType.Float64);
        foreach (var (loss, value, gradient, hvp) in new[]
        {
            (LossFunction.Parse("cross-entropy"), reference.CrossEntropy, reference.CrossEntropyGradient, reference.CrossEntropyHvp),
            (LossFunction.Parse("mse"), reference.Mse, reference.MseGradient, reference.MseHvp),
        })
        {
            // Batches of 5 rows: the sums over batches equal PyTorch's one mean over all 16.
            using var map = new ResidualMap(model, data, loss, batchSize: 5);
            Assert.True(Math.Abs(map.Loss() - value) <= 1e-13 * Math.Abs(value), $"{loss.Kind}: L = {map.Loss():R}, PyTorch {value:R}");
            var g = map.Gradient().data<double>().ToArray();
            Assert.True(RelativeError(g, gradient) < 1e-10, $"{loss.Kind}: ∇L differs by {RelativeError(g, gradient):E2}");
            var hv = map.HessianTimes(v.unsqueeze(1)).reshape(-1).data<double>().ToArray();
            Assert.True(RelativeError(hv, hvp) < 1e-10, $"{loss.Kind}: ∇²L·v differs by {RelativeError(hv, hvp):E2}");
        }
    }

    [Fact]
    public void The_Module_Is_Read_With_Its_Parameters_In_Named_Parameters_Order_And_Its_Statistics_Fixed()
    {
        TorchRuntime.EnsureInitialized();
        var reference = ReadReference();
        var (parameters, point) = TorchScriptNetwork.Inspect(Fixture("cnn_scripted.pt"));
        Assert.Equal(reference.Names, parameters.Select(p => p.Name));
        Assert.All(parameters, p => Assert.Equal(ScalarType.Float32, p.SavedType));
        var seq = ModelFile.Load(Fixture("cnn_seq.json"));
        Assert.Equal(seq.Parameters, point); // float32 widened to float64 exactly, as the script wrote them
        var opened = (TorchScriptNetwork)ModelFile.Load(Fixture("cnn_scripted.pt"), Shape).Network;
        Assert.Contains("bn1.running_mean", opened.Buffers);
        Assert.Contains("eval mode", opened.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void Its_Jacobian_Equals_The_Batched_Jacobian_Of_The_Same_Sequential_Network()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var script = ModelFile.Load(Fixture("cnn_traced.pt"), Shape);
        var seq = ModelFile.Load(Fixture("cnn_seq.json"));
        using var data = ArrayFileSource.OpenNpz(Fixture("rows.npz"));
        var (x, _) = data.Read(0, 4);
        var p = tensor(seq.Parameters, dtype: ScalarType.Float64);
        var a = script.Network.Jacobian(p, x);
        var b = seq.Network.Jacobian(p, x);
        double error = (a - b).abs().max().item<double>() / b.abs().max().item<double>();
        Assert.True(error < 1e-12, $"J differs by {error:E2}");
    }

    [Fact]
    public void In_Float32_It_Agrees_To_Float32_Round_Off_And_Decisions_Of_Rank_Refuse_It()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        var reference = ReadReference();
        var point = ModelFile.Load(Fixture("cnn_scripted.pt"), Shape, ScalarType.Float32);
        Assert.False(point.Network.ComputesInFloat64);
        using var data = ArrayFileSource.OpenNpz(Fixture("rows.npz"));
        using var model = point.ToModel();
        using var map = new ResidualMap(model, data, LossFunction.Parse("cross-entropy"));
        double loss = map.Loss();
        Assert.True(Math.Abs(loss - reference.CrossEntropy) <= 1e-6 * reference.CrossEntropy, $"float32 L = {loss:R}, PyTorch float64 {reference.CrossEntropy:R}");
        Assert.NotEqual(reference.CrossEntropy, loss); // it did compute in float32
        using var squared = new ResidualMap(model, data);
        var e = Assert.Throws<LandscapeInputException>(() => Geometry.Certificate.Compute(squared));
        Assert.Contains("float32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_Saved_Module_Reads_Back_With_The_Same_Point_In_Float64()
    {
        TorchRuntime.EnsureInitialized();
        using var dir = new TemporaryDirectory();
        var point = ModelFile.Load(Fixture("cnn_scripted.pt"), Shape);
        var moved = point.Parameters.Select((v, i) => v + (1e-3 * Math.Sin(i))).ToArray(); // not float32 values
        string path = Path.Combine(dir.Path, "moved.pt");
        ModelFile.Save(path, point with { Parameters = moved });
        var back = ModelFile.Load(path, Shape);
        Assert.Equal(moved, back.Parameters);
        Assert.All(TorchScriptNetwork.Inspect(path).Parameters, p => Assert.Equal(ScalarType.Float64, p.SavedType));
    }

    [Fact]
    public void Files_That_Are_Not_TorchScript_Modules_Are_One_Line_Refusals_Naming_The_File()
    {
        TorchRuntime.EnsureInitialized();
        using var dir = new TemporaryDirectory();
        string text = Path.Combine(dir.Path, "text.pt");
        File.WriteAllText(text, "not a model");
        string npz = Fixture("rows.npz"); // a zip archive, but not TorchScript
        string truncated = Path.Combine(dir.Path, "truncated.pt");
        var bytes = File.ReadAllBytes(Fixture("cnn_scripted.pt"));
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        foreach (var path in new[] { npz, truncated })
        {
            var e = Assert.Throws<ModelFormatException>(() => ModelFile.Load(path, Shape));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', e.Message);
        }
        Assert.Throws<ModelFormatException>(() => ModelFile.Load(text, Shape)); // not JSON either: the JSON reader's refusal
        var wrongShape = Assert.Throws<ModelFormatException>(() => ModelFile.Load(Fixture("cnn_scripted.pt"), [64]));
        Assert.Contains("rows of shape [64]", wrongShape.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', wrongShape.Message);
        var noShape = Assert.Throws<ModelFormatException>(() => ModelFile.Load(Fixture("cnn_scripted.pt")));
        Assert.Contains("shape", noShape.Message, StringComparison.Ordinal);
    }

    /// <summary>A directory of the test's own, removed with its files at the end.</summary>
    private sealed class TemporaryDirectory : IDisposable
    {
        public string Path { get; } = System.IO.Directory.CreateTempSubdirectory("landscape-torchscript-").FullName;

        public void Dispose() => System.IO.Directory.Delete(Path, recursive: true);
    }
}
