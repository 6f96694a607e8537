using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Models;
using LossLandscape.Models.Activations;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

/// <summary>
/// <see cref="TorchScriptExport"/> on the shared case table: every MLP and sequential network, written as TorchScript and read
/// back through libtorch's own loader (<see cref="TorchScriptNetwork.Open"/>), has p exactly and f to rounding, in every
/// activation; its Hessian-vector products equal the network's; DAGs are refused in one line.
/// </summary>
public sealed class TorchScriptExportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Layered()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases.Mlps().Concat(Cases.Sequentials()))
        {
            data.Add(c.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Layered))]
    public void A_Written_Module_Read_Back_By_Libtorch_Has_The_Same_Point_And_Outputs(string name)
    {
        var c = Cases.Get(name);
        using var scope = NewDisposeScope();
        string path = Path.Combine(_dir, "net.pt");
        TorchScriptExport.Save(path, c.Network, c.Parameters);
        Assert.True(TorchScriptNetwork.IsTorchScriptFile(path));
        var back = TorchScriptNetwork.Open(path, c.Network.InputShape);
        Assert.Equal(c.Parameters, back.Parameters); // p exactly: float64 storages, in p's order
        Assert.Equal(c.Network.OutputDim, back.Network.OutputDim);
        var x = c.Data.InputsTensor();
        var expected = c.Network.Forward(tensor(c.Parameters), x);
        var actual = back.Network.Forward(tensor(back.Parameters), x);
        double scale = Math.Max(1.0, expected.abs().max().item<double>());
        Assert.True((expected - actual).abs().max().item<double>() <= Tolerances.SameNetworkInTorch * scale, name);

        // Second order too: the module's graph is the network's.
        using var mine = new NetworkModel(c.Network, c.Parameters);
        using var theirs = back.ToModel();
        using var a = new ResidualMap(mine, c.Data);
        using var b = new ResidualMap(theirs, c.Data);
        var v = randn(c.Network.ParameterCount, 1, dtype: float64, generator: new Generator(3));
        var hv = a.HessianTimes(v);
        double hvScale = Math.Max(1.0, hv.abs().max().item<double>());
        Assert.True((hv - b.HessianTimes(v)).abs().max().item<double>() <= Tolerances.SameNetworkInTorch * hvScale, name);
    }

    [Fact]
    public void A_Scaled_Network_Carries_Its_Scaling_And_Every_Activation_Is_Written()
    {
        using var scope = NewDisposeScope();
        var data = SyntheticData.Gaussian(12, 3, 2, seed: 4);
        foreach (var activation in ActivationRegistry.Names)
        {
            var mlp = new Mlp(3, [new HiddenLayer(5, ActivationRegistry.Get(activation))], 2).WithScaling(new InputScaling([0.5, -1.0, 2.0], [2.0, 0.25, 3.0]));
            var p = mlp.InitialParameters(seed: 2);
            string path = Path.Combine(_dir, $"{activation}.pt");
            TorchScriptExport.Save(path, mlp, p);
            var back = TorchScriptNetwork.Open(path, [3]);
            var x = data.InputsTensor();
            var expected = mlp.Forward(tensor(p), x);
            var difference = (expected - back.Network.Forward(tensor(back.Parameters), x)).abs().max().item<double>();
            Assert.True(difference <= Tolerances.SameNetworkInTorch * Math.Max(1.0, expected.abs().max().item<double>()), $"{activation}: {difference:G3}");
        }
    }

    [Fact]
    public void A_Dag_Is_Refused_In_One_Line_And_Nothing_Is_Written()
    {
        var c = Cases.Dags().First();
        string path = Path.Combine(_dir, "dag.pt");
        var e = Assert.Throws<LandscapeInputException>(() => TorchScriptExport.Save(path, c.Network, c.Parameters));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("only MLPs and sequential networks", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }
}

/// <summary><c>landscape export</c>: a CNN made by <c>init --arch</c> written as TorchScript, read back by every command as a <c>.pt</c>.</summary>
public sealed class ExportCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-export-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Export_Writes_A_Module_Whose_Loss_Equals_The_Seq_Files_And_Refuses_Bad_Input_In_One_Line()
    {
        string seq = Path.Combine(_dir, "m.json"), pt = Path.Combine(_dir, "m.pt"), json = Path.Combine(_dir, "e.json");
        string[] data = ["--data", "builtin:digits", "--input-shape", "1,8,8", "--one-hot", "digit", "--rows", "200"];
        var (code, _, err) = CliTests.Run(["init", .. data, "--arch", "conv:4:3:1:1,bn,smoolu,pool:2,flatten,linear:8,softplus,linear", "--standardize", "--out", seq]);
        Assert.True(code == 0, err);
        (code, _, err) = CliTests.Run(["export", "--model", seq, "--out", pt, "--json", json]);
        Assert.True(code == 0, err);
        using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json)))
        {
            Assert.Equal("torchscript", doc.RootElement.GetProperty("format").GetString());
            Assert.Equal(pt, doc.RootElement.GetProperty("out").GetString());
        }
        double Loss(string model)
        {
            string at = Path.Combine(_dir, Path.GetFileNameWithoutExtension(model) + "-ev.json");
            var (c, _, e) = CliTests.Run(["evaluate", "--model", model, .. data, "--json", at]);
            Assert.True(c == 0, e);
            using var d = System.Text.Json.JsonDocument.Parse(File.ReadAllText(at));
            return d.RootElement.GetProperty("loss").GetDouble();
        }
        double expected = Loss(seq);
        Assert.Equal(expected, Loss(pt), expected * Tolerances.SameNetworkInTorch);

        // A .pt is already TorchScript; an output over the input; a DAG: each one line, exit 2, nothing written.
        foreach (var (args, says) in new (string[], string)[]
        {
            (["export", "--model", pt, "--out", Path.Combine(_dir, "again.pt")], "already a TorchScript module"),
            (["export", "--model", seq, "--out", seq], "must not overwrite an input"),
        })
        {
            (code, _, err) = CliTests.Run(args);
            Assert.Equal(2, code);
            Assert.Contains(says, err, StringComparison.Ordinal);
            Assert.Single(err.Trim().Split('\n'));
        }
        Assert.False(File.Exists(Path.Combine(_dir, "again.pt")));
    }
}
