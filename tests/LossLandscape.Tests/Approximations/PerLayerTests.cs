using System.Text.Json;
using LossLandscape.Approximations;
using LossLandscape.Curvature;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Operators;
using static TorchSharp.torch;

namespace LossLandscape.Tests.Approximations;

/// <summary>
/// Issue 23 §2: each layer's block of the curvature — its top eigenvalues and its trace — against the dense Hessian's
/// diagonal blocks (<see cref="PerLayerCurvature"/>), and <c>spectrum --per-layer</c> and <c>trace --per-layer</c>.
/// </summary>
public sealed class PerLayerTests
{
    [Theory]
    [InlineData("mlp 3-4-3-3 tanh/smoolu scaled")]
    [InlineData("seq 1x6x6 conv/s2-smoolu-bn-conv-softplus-maxpool-linear ℓ=2")]
    [InlineData("dag shared tanh ℓ=3")]
    public void Each_Layers_Eigenvalues_And_Trace_Are_Those_Of_The_Dense_Hessians_Block(string name)
    {
        TorchRuntime.EnsureInitialized();
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        using var model = new NetworkModel(c.Network, c.Parameters);
        using var map = new ResidualMap(model, c.Data);
        var hessian = Curvature.CurvatureReference.Hessian(c.Network, c.Parameters, c.Data);
        var blocks = ParameterBlocks.Of(model);
        var result = PerLayerCurvature.Compute(map, new PerLayerOptions(K: 2, Tolerance: 1e-10, TraceMethod: TraceMethod.Exact));
        Assert.Equal(blocks.Select(b => b.Name), result.Layers.Select(l => l.Layer));
        foreach (var (layer, b) in result.Layers.Zip(blocks))
        {
            var index = tensor(b.Indices.Select(i => (long)i).ToArray());
            var block = hessian.index_select(0, index).index_select(1, index);
            var top = linalg.eigvalsh(block).flip(0).data<double>().ToArray();
            double scale = Math.Max(Math.Abs(top[0]), Math.Abs(top[^1]));
            for (int i = 0; i < layer.Eigenvalues.Count; i++)
            {
                Assert.True(layer.Converged[i]);
                Assert.True(Math.Abs(layer.Eigenvalues[i] - top[i]) <= Tolerances.LanczosAgreement * scale, $"{layer.Layer} λ{i}: {layer.Eigenvalues[i]} vs {top[i]}");
            }
            Assert.True(Math.Abs(layer.Trace - block.trace().item<double>()) <= Tolerances.SecondOrderAgreement * Math.Max(1, hessian.abs().max().item<double>() * b.Count));
            Assert.Equal(0.0, layer.TraceStandardError);
        }
    }

    [Fact]
    public void A_TorchScript_Networks_Blocks_Are_Its_Submodules_And_Match_The_Same_Sequential_Network()
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        string directory = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
        long[] shape = [1, 8, 8];
        var script = ModelFile.Load(Path.Combine(directory, "cnn_scripted.pt"), shape);
        var sequential = ModelFile.Load(Path.Combine(directory, "cnn_seq.json"), shape);
        var scriptBlocks = ParameterBlocks.Of(script.Network);
        var sequentialBlocks = ParameterBlocks.Of(sequential.Network);
        // The same network written twice: one block per layer with parameters, at the same places in p.
        Assert.Equal(sequentialBlocks.Select(b => (b.Offset, b.Count)), scriptBlocks.Select(b => (b.Offset, b.Count)));
        Assert.All(scriptBlocks, b => Assert.Equal(LayerKind.Module, b.Kind));
        using var data = LossLandscape.Data.ArrayFileSource.OpenNpz(Path.Combine(directory, "rows.npz"));
        using var scriptModel = script.ToModel();
        using var sequentialModel = sequential.ToModel();
        using var scriptMap = new ResidualMap(scriptModel, data, LossFunction.CrossEntropy);
        using var sequentialMap = new ResidualMap(sequentialModel, data, LossFunction.CrossEntropy);
        // The block diagonals of G agree on a few vectors (L products of G each: the TorchScript module's products are slow).
        using var fromScript = new BlockDiagonalOperator(new GaussNewtonOperator(scriptMap), scriptBlocks);
        using var fromSequential = new BlockDiagonalOperator(new GaussNewtonOperator(sequentialMap), sequentialBlocks);
        var v = tensor(SeededNormal.Vector(new Random(6), script.Network.ParameterCount * 2), dtype: float64).reshape(-1, 2);
        Assert.True(ApproximationReference.Relative(fromSequential.ApplyMatrix(v), fromScript.ApplyMatrix(v)) <= Tolerances.SecondOrderAgreement);
        var refusal = Assert.Throws<LandscapeInputException>(() => KfacOperator.Create(scriptMap));
        Assert.Contains("losslandscape.seq/1", refusal.Message);

        // A network written by landscape export (parameters layer{k}_weight, layer{k}_bias) has the blocks of the network it was written from.
        string exported = Path.Combine(Path.GetTempPath(), $"approx-export-{Environment.ProcessId}.pt");
        try
        {
            TorchScriptExport.Save(exported, sequential.Network, sequential.Parameters);
            var reopened = ModelFile.Load(exported, shape);
            Assert.Equal(sequentialBlocks.Select(b => (b.Offset, b.Count)), ParameterBlocks.Of(reopened.Network).Select(b => (b.Offset, b.Count)));
        }
        finally
        {
            File.Delete(exported);
        }
    }

    [Fact]
    public void Spectrum_And_Trace_Per_Layer_Write_One_Entry_Per_Layer()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-per-layer-").FullName;
        try
        {
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            string model = Path.Combine(dir, "m.json");
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "5", "--out", model]).Code);
            foreach (var command in new[] { "spectrum", "trace" })
            {
                string json = Path.Combine(dir, $"{command}.json");
                var (code, output, err) = CliTests.Run([command, "--model", model, .. data, "--per-layer", "--k", "2", "--json", json]);
                Assert.True(code == 0, output + err);
                Assert.Contains("layer 2 (linear 5 → 3)", output);
                using var doc = JsonDocument.Parse(File.ReadAllText(json));
                var layers = doc.RootElement.GetProperty("perLayer").GetProperty("layers").EnumerateArray().ToArray();
                Assert.Equal(2, layers.Length);
                foreach (var layer in layers)
                {
                    Assert.Equal(2, layer.GetProperty("eigenvalues").GetArrayLength());
                    Assert.Equal(2, layer.GetProperty("residuals").GetArrayLength());
                    Assert.True(layer.GetProperty("traceStandardError").GetDouble() > 0); // Hutchinson (spectrum) and Hutch++ (trace's default)
                }
            }
            var (bad, _, badErr) = CliTests.Run(["spectrum", "--model", model, .. data, "--per-layer", "--method", "dense"]);
            Assert.Equal(2, bad);
            Assert.Contains("--per-layer", badErr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
