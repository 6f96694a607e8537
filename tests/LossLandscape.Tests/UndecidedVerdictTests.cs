using System.Net;
using System.Text.Json;
using LossLandscape.Curvature;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Reports;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 19, finding 5: wherever the certificate did not decide something, the table, the report and the JSON say
/// "not decided" with the reason; "dim M" appears only at a point of M (elsewhere "n − rank J").
/// </summary>
public sealed class UndecidedVerdictTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-undecided-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Certify_Off_M_Says_Not_Decided_With_The_Reason_In_The_Table_And_The_Json_And_No_Dim_M()
    {
        Assert.Equal(0, CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "4", "--out", P("m.json")).Code);
        var (code, output, err) = CliTests.Run("certify", "--model", P("m.json"), "--data", "builtin:iris", "--one-hot", "species", "--method", "gram", "--json", P("c.json"));
        Assert.True(code == 0, err);
        // Was: "│ inertia of ∇²L │ 51 positive, 16 zero, 0 negative (gram, …; NOT decided)" and "│ dim M = n − rank │ 16".
        var inertia = Assert.Single(output.Split('\n'), line => line.Contains("│ inertia of ∇²L", StringComparison.Ordinal));
        Assert.Contains("│ not decided: the point is not on M", inertia);
        Assert.DoesNotContain("dim M", output);
        Assert.Contains("│ n − rank J ", output);

        using var doc = JsonDocument.Parse(File.ReadAllText(P("c.json")));
        var root = doc.RootElement;
        Assert.False(root.GetProperty("onManifold").GetBoolean());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("manifoldDimension").ValueKind);
        int rank = root.GetProperty("jacobian").GetProperty("rank").GetInt32();
        Assert.Equal(root.GetProperty("n").GetInt32() - rank, root.GetProperty("kernelDimension").GetInt32());
        // The rank's note says what its flag says (whether σ_rank+1 ≈ 1e−13 clears tolerance/10 here depends on rounding).
        var jacobian = root.GetProperty("jacobian");
        Assert.StartsWith(jacobian.GetProperty("decided").GetBoolean() ? "decided: " : "not decided: ", jacobian.GetProperty("note").GetString());
        Assert.False(root.GetProperty("hessian").GetProperty("decided").GetBoolean());
        Assert.StartsWith("not decided: the point is not on M", root.GetProperty("hessian").GetProperty("note").GetString());
    }

    [Fact]
    public void Report_Off_M_On_The_Gram_Route_Says_Not_Decided_And_No_Dim_M()
    {
        TorchRuntime.EnsureInitialized();
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 10 == 0));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(6, new Models.Activations.SmooLU())], data.OutputDim);
        using var model = new NetworkModel(mlp, mlp.InitialParameters(1));
        using var map = new ResidualMap(model, data);
        // A budget just below the dense certificate's: Auto takes the σ(J) route, which off M decides nothing about ∇²L.
        long budget = Certificate.DenseBytes(map.ParameterCount, map.Constraints) - 1;
        var report = new HtmlReport("off M, gram");
        var cert = LandscapeReport.Build(report, map, new ReportOptions(SliceGrid: 5, WalkSteps: 0), limits: new RunLimits(budget));
        Assert.False(cert.OnManifold);
        Assert.Equal("gram", cert.Hessian.Method);
        Assert.False(cert.Hessian.Decided);
        var html = report.Render();
        // Was: "inertia of ∇²L | 45 positive, 6 zero, 0 negative (gram, tolerance …)", the undecided flag dropped.
        Assert.Contains(WebUtility.HtmlEncode("inertia of ∇²L") + "</td><td>" + WebUtility.HtmlEncode("not decided: the point is not on M"), html);
        Assert.DoesNotContain("dim M", html);
        Assert.Contains(WebUtility.HtmlEncode("n − rank J") + "</td><td>" + cert.KernelDimension + WebUtility.HtmlEncode(" (dim ker J; the point is not on M, so not the dimension of M"), html);
        // Here σ_rank+1 lies within a factor 10 of the tolerance (rank not decided), where the page said "regular point: no".
        Assert.Contains("regular point</td><td>" + (cert.Jacobian.Decided ? (cert.RegularPoint ? "yes" : "no") : "not decided: rank J is not decided"), html);
    }

    [Fact]
    public void An_Undecided_Rank_Says_Not_Decided_In_Rank_Regular_Point_And_Dim_M()
    {
        // σ_rank = 2e−10 lies within a factor 10 of the tolerance 1e−10: the cut is not resolved.
        var rank = new RankDecision(2, 1e-10, 1e-12, [3.0, 2e-10, 1e-13], 3, "svd of J");
        Assert.False(rank.Decided);
        var inertia = InertiaRule.FromJacobian(rank, 10, squaredLoss: true, onManifold: true);
        var onM = new CertificateResult(10, 3, 1, 3, 1e-20, 1e-10, 1e-8, true, rank, inertia, 0.1);
        // certify's table (the CLI renders the library's rows); was "regular point │ no (rank < ℓd)", "dim M = n − rank │ 8".
        var table = CertifyTable(onM);
        Assert.StartsWith("2 of ℓd = 3 (svd of J; not decided: σ_rank = 2E-10 is less than 10·tolerance", Value(table, "rank J"));
        Assert.Equal("not decided: rank J is not decided", Value(table, "regular point"));
        Assert.Equal("8 (not decided: rank J is not decided)", Value(table, "dim M = n − rank J"));
        Assert.StartsWith("not decided: the rank gap of J is not resolved", Value(table, "inertia of ∇²L"));
        Assert.DoesNotContain("│ how ", table);

        var offM = onM with { OnManifold = false, MaxAbsResidual = 1 };
        Assert.Null(offM.ManifoldDimension);
        var offTable = CertifyTable(offM);
        Assert.DoesNotContain("dim M", offTable);
        Assert.StartsWith("8 (dim ker J; the point is not on M, so not the dimension of M; not decided:", Value(offTable, "n − rank J"));
    }

    /// <summary><c>certify</c>'s table of <paramref name="certificate"/>, as the command prints it.</summary>
    private static string CertifyTable(CertificateResult certificate)
    {
        var stdout = new StringWriter();
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species"));
        Cli.Commands.CertifyCommand.Render(new Cli.CliContext(stdout, new StringWriter()), "certificate", data, certificate);
        return stdout.ToString();
    }

    /// <summary>The first line of the value of the row <paramref name="quantity"/> of a Spectre table.</summary>
    private static string Value(string table, string quantity)
    {
        var line = Assert.Single(table.Split('\n'), l => l.StartsWith("│ " + quantity + " ", StringComparison.Ordinal));
        return line.Split('│')[2].Trim();
    }
}
