using System.Globalization;
using System.Text;
using System.Text.Json;
using LossLandscape.Models;

namespace LossLandscape.Tests.Approximations;

/// <summary>Issue 23 §2: <c>landscape approx</c> in-process — its JSON fields, and bad input exiting 2 with one line.</summary>
public sealed class ApproxCliTests : IDisposable
{
    private static readonly string[] Data = ["--data", "builtin:iris", "--one-hot", "species"];

    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-approx-").FullName;
    private readonly string _model;

    public ApproxCliTests()
    {
        _model = Path.Combine(_dir, "m.json");
        var (code, _, err) = CliTests.Run(["init", .. Data, "--hidden", "4", "--out", _model]);
        Assert.True(code == 0, err);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Approx_Writes_One_Object_Per_Kind_With_The_Named_Fields()
    {
        string json = Path.Combine(_dir, "a.json");
        var (code, output, err) = CliTests.Run(["approx", "--model", _model, .. Data, "--kind", "kfac,ekfac,diag,block", "--against", "ggn", "--k", "3", "--json", json]);
        Assert.True(code == 0, output + err);
        Assert.Contains("‖A − G‖_F/‖G‖_F", output);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var approximations = doc.RootElement.GetProperty("approximations").EnumerateArray().ToArray();
        Assert.Equal(["kfac", "ekfac", "diag", "block"], approximations.Select(a => a.GetProperty("kind").GetString()));
        foreach (var a in approximations)
        {
            foreach (var field in new[] { "frobeniusError", "frobeniusErrorStdError", "traceError", "subspaceOverlap", "seconds", "products" })
            {
                Assert.Equal(JsonValueKind.Number, a.GetProperty(field).ValueKind);
            }
            Assert.Equal(3, a.GetProperty("topEigenvalues").GetArrayLength());
            Assert.Equal(3, a.GetProperty("exactTopEigenvalues").GetArrayLength());
        }
        // EKFAC is never further from G's blocks than KFAC, and neither is closer to G than the exact block diagonal.
        double F(int i) => approximations[i].GetProperty("frobeniusError").GetDouble();
        Assert.True(F(1) <= F(0) * (1 + Tolerances.ExactAgreement));
        Assert.True(F(3) <= F(1) * (1 + Tolerances.ExactAgreement));

        var (hessianCode, hessianOut, hessianErr) = CliTests.Run(["approx", "--model", _model, .. Data, "--loss", "cross-entropy", "--kind", "diag,kfac", "--against", "hessian", "--k", "2"]);
        Assert.True(hessianCode == 0, hessianOut + hessianErr);
        Assert.Contains("hessian", hessianOut);

        // The Monte Carlo Fisher: seeded, so two runs agree; and KFAC from it is further from G than the exact factor's.
        string mc1 = Path.Combine(_dir, "mc1.json"), mc2 = Path.Combine(_dir, "mc2.json");
        foreach (var path in new[] { mc1, mc2 })
        {
            var (mcCode, mcOut, mcErr) = CliTests.Run(["approx", "--model", _model, .. Data, "--kind", "kfac", "--k", "2", "--mc-samples", "1", "--seed", "4", "--json", path]);
            Assert.True(mcCode == 0, mcOut + mcErr);
        }
        using var first = JsonDocument.Parse(File.ReadAllText(mc1));
        using var second = JsonDocument.Parse(File.ReadAllText(mc2));
        double mcError = first.RootElement.GetProperty("approximations")[0].GetProperty("frobeniusError").GetDouble();
        // The same draws; the products may sum in another order across libtorch's threads.
        Assert.True(Math.Abs(mcError - second.RootElement.GetProperty("approximations")[0].GetProperty("frobeniusError").GetDouble()) <= Tolerances.ExactAgreement * mcError);
        Assert.True(mcError > F(0), $"Monte Carlo {mcError} vs exact {F(0)}");
    }

    [Fact]
    public void Report_Approx_Adds_The_Error_Table_And_The_Eigenvalue_Figure()
    {
        string page = Path.Combine(_dir, "page");
        var (code, output, err) = CliTests.Run(["report", "--model", _model, .. Data, "--out", page, "--approx", "--grid", "5", "--walk-steps", "0"]);
        Assert.True(code == 0, output + err);
        string html = File.ReadAllText(Path.Combine(page, "index.html"));
        int section = html.IndexOf("<h2>Curvature approximations</h2>", StringComparison.Ordinal);
        Assert.True(section >= 0, "no section");
        string rest = html[section..];
        foreach (var kind in new[] { "kfac", "ekfac", "diag", "block" })
        {
            Assert.Contains($"<td>{kind}</td>", rest);
        }
        Assert.Contains("<svg", rest);
        Assert.Contains("approximate against exact", rest);
    }

    [Fact]
    public void Bad_Input_Exits_2_With_One_Line()
    {
        string dag = Path.Combine(_dir, "dag.json");
        var dagCase = Cases.Dags().First();
        ModelFile.Save(dag, new NetworkPoint(dagCase.Network, dagCase.Parameters));
        string csv = Path.Combine(_dir, "dag.csv");
        var (x, y) = dagCase.Data.Read(0, dagCase.Data.Count);
        var text = new StringBuilder("a,b,y\n");
        var xs = x.data<double>().ToArray();
        var ys = y.data<double>().ToArray();
        for (int i = 0; i < dagCase.Data.Count; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"{xs[2 * i]:R},{xs[(2 * i) + 1]:R},{ys[i]:R}\n");
        }
        File.WriteAllText(csv, text.ToString());
        foreach (var (args, message) in new (string[], string)[]
        {
            (["approx", "--model", _model, .. Data, "--k", "0"], "--k"),
            (["approx", "--model", _model, .. Data, "--k", "1000"], "out of range"),
            (["approx", "--model", _model, .. Data, "--kind", "kfac,lowrank"], "--kind"),
            (["approx", "--model", _model, .. Data, "--against", "fisher"], "--against"),
            (["approx", "--model", _model, .. Data, "--mc-samples", "0"], "--mc-samples"),
            (["approx", "--model", dag, "--data", csv, "--target", "y", "--kind", "kfac"], "KFAC and EKFAC are defined for linear and conv2d layers"),
        })
        {
            var (code, output, err) = CliTests.Run(args);
            Assert.True(code == 2, $"{string.Join(" ", args)}: {code} {output}{err}");
            Assert.Contains(message, err);
            Assert.Single(err.Trim().Split('\n'));
        }
    }
}
