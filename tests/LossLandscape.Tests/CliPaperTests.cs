using System.Text.Json;


namespace LossLandscape.Tests;

/// <summary>construct, certify and walk in-process: exit codes, tables and the JSON field names the project promises.</summary>
public sealed class CliPaperTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-paper-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void Construct_Certify_Walk_On_Iris_One_Hot()
    {
        var (code, output, err) = CliTests.Run("construct", "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--standardize", "--out", P("m.json"), "--json", P("c.json"));
        Assert.True(code == 0, output + err);
        using (var c = JsonDocument.Parse(File.ReadAllText(P("c.json"))))
        {
            Assert.True(c.RootElement.GetProperty("meetsGoal").GetBoolean());
            Assert.True(c.RootElement.GetProperty("triangularCondition").GetDouble() > 1);
        }

        (code, output, err) = CliTests.Run("certify", "--model", P("m.json"), "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--method", "gram", "--json", P("cert.json"));
        Assert.True(code == 0, output + err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("cert.json"))))
        {
            var root = doc.RootElement;
            foreach (var field in new[] { "n", "d", "outputs", "constraints", "loss", "maxAbsResidual", "onManifold", "jacobian", "manifoldDimension", "regularPoint", "hessian" })
            {
                Assert.True(root.TryGetProperty(field, out _), field);
            }
            var j = root.GetProperty("jacobian");
            foreach (var field in new[] { "rank", "tolerance", "sigmaMax", "sigmaMin", "sigmaNext" })
            {
                Assert.True(j.TryGetProperty(field, out _), field);
            }
            var h = root.GetProperty("hessian");
            foreach (var field in new[] { "method", "positive", "zero", "negative", "tolerance", "eigenvalues" })
            {
                Assert.True(h.TryGetProperty(field, out _), field);
            }
            Assert.Equal(447, root.GetProperty("constraints").GetInt32());
            Assert.Equal(447, j.GetProperty("rank").GetInt32());
            Assert.Equal(root.GetProperty("n").GetInt32() - 447, root.GetProperty("manifoldDimension").GetInt32());
            Assert.True(root.GetProperty("regularPoint").GetBoolean());
            Assert.Equal(447, h.GetProperty("eigenvalues").GetArrayLength());
        }

        (code, output, err) = CliTests.Run("walk", "--model", P("m.json"), "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--steps", "3", "--step-size", "0.1", "--out", P("end.json"), "--json", P("walk.json"));
        Assert.True(code == 0, output + err);
        using var walk = JsonDocument.Parse(File.ReadAllText(P("walk.json")));
        var steps = walk.RootElement.GetProperty("steps");
        Assert.Equal(4, steps.GetArrayLength());
        Assert.True(steps[3].GetProperty("displacement").GetDouble() > 0.1);
        Assert.True(File.Exists(P("end.json")));
    }

    [Theory]
    [InlineData("smallest width that works is 149", "--hidden", "100", "--dedupe")]
    [InlineData("rows 102, 143", "--hidden", "150")]
    [InlineData("not rectified", "--activation", "tanh", "--dedupe")]
    public void Construct_Bad_Input_Exits_2(string message, params string[] extra)
    {
        var args = new[] { "construct", "--data", "builtin:iris", "--out", P("x.json") }.Concat(extra).ToArray();
        var (code, _, err) = CliTests.Run(args);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Certify_Perturb_Restores_Full_Rank_From_The_Command_Line()
    {
        var (data, point) = LossLandscape.Reports.PaperVerification.RankDeficientPoint();
        var csv = new System.Text.StringBuilder("x0,x1,y\n");
        for (int i = 0; i < data.Count; i++)
        {
            csv.Append(string.Join(",", data.InputRow(i).Append(data.Target(i, 0)).Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))).Append('\n');
        }
        File.WriteAllText(P("rd.csv"), csv.ToString());
        LossLandscape.Models.ModelFile.Save(P("rd.json"), point);
        var (code, output, err) = CliTests.Run("certify", "--model", P("rd.json"), "--data", P("rd.csv"), "--target", "y", "--perturb", "1e-2", "--json", P("rd-cert.json"));
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(P("rd-cert.json")));
        Assert.True(doc.RootElement.GetProperty("jacobian").GetProperty("rank").GetInt32() <= 7);
        Assert.False(doc.RootElement.GetProperty("regularPoint").GetBoolean());
        var perturbation = doc.RootElement.GetProperty("perturbation");
        Assert.True(perturbation.GetProperty("norm").GetDouble() < 1e-2);
        var after = perturbation.GetProperty("certificate");
        Assert.Equal(12, after.GetProperty("jacobian").GetProperty("rank").GetInt32());
        Assert.True(after.GetProperty("regularPoint").GetBoolean());
        Assert.True(after.GetProperty("onManifold").GetBoolean(), output);
    }

    [Fact]
    public void Certify_States_The_On_M_Comparison_That_Decided_It()
    {
        // Off M (a fresh initialization) the line must read as a failed test, with both numbers; on M as a passed one.
        var (code, output, err) = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "4", "--seed", "1", "--out", P("fresh.json"));
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run("certify", "--model", P("fresh.json"), "--data", "builtin:iris", "--one-hot", "species", "--json", P("fresh-cert.json"));
        Assert.True(code == 0, output + err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(P("fresh-cert.json"))))
        {
            var root = doc.RootElement;
            Assert.False(root.GetProperty("onManifold").GetBoolean());
            string x = LossLandscape.Reports.CertificateText.Number(root.GetProperty("maxAbsResidual").GetDouble());
            string y = LossLandscape.Reports.CertificateText.Number(root.GetProperty("onManifoldTolerance").GetDouble());
            Assert.Contains($"no (max|H| = {x} > tolerance {y})", output);
        }
        Assert.DoesNotContain("≤", OnMLine(output));

        (code, output, err) = CliTests.Run("construct", "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--standardize", "--out", P("onm.json"));
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run("certify", "--model", P("onm.json"), "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--method", "gram");
        Assert.True(code == 0, output + err);
        Assert.Matches(@"yes \(max\|H\| = \S+ ≤ tolerance \S+\)", OnMLine(output));

        static string OnMLine(string table) => table.Split('\n').Single(line => line.Contains("on M ", StringComparison.Ordinal) && line.Contains("max|H|", StringComparison.Ordinal));
    }

    [Fact]
    public void Certify_Dense_Refuses_Over_Budget_Naming_Gram()
    {
        var (code, output, err) = CliTests.Run("init", "--data", "builtin:digits", "--hidden", "700", "--out", P("big.json"));
        Assert.True(code == 0, output + err);
        (code, _, err) = CliTests.Run("certify", "--model", P("big.json"), "--data", "builtin:digits", "--method", "dense");
        Assert.Equal(2, code);
        // The library's remedy in words (the gram method) and, named by the CLI for it, the option (--method).
        Assert.Contains("use the gram method", err);
        Assert.Contains("(--method)", err);
    }
}

/// <summary>slice and report in-process.</summary>
public sealed class CliPlotTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-plots-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Slice_And_Report_Write_Their_Files()
    {
        var model = Path.Combine(_dir, "m.json");
        var (code, output, err) = CliTests.Run("construct", "--data", "builtin:iris", "--dedupe", "--hidden", "160", "--out", model);
        Assert.True(code == 0, output + err);
        var svg = Path.Combine(_dir, "s.svg");
        (code, output, err) = CliTests.Run("slice", "--model", model, "--data", "builtin:iris", "--dedupe", "--directions", "tangent,normal", "--grid", "7", "--range", "0.01", "--out", svg, "--json", Path.Combine(_dir, "s.json"));
        Assert.True(code == 0, output + err);
        Assert.Contains("<svg", File.ReadAllText(svg));
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "s.json"))))
        {
            Assert.Equal(7, doc.RootElement.GetProperty("loss").GetArrayLength());
            Assert.Equal("tangent", doc.RootElement.GetProperty("directions")[0].GetString());
        }
        (code, output, err) = CliTests.Run("slice", "--model", model, "--data", "builtin:iris", "--dedupe", "--directions", "filter", "--dims", "1", "--grid", "5", "--out", Path.Combine(_dir, "f.png"));
        Assert.True(code == 0, output + err);
        Assert.True(new FileInfo(Path.Combine(_dir, "f.png")).Length > 1000);
        (code, _, err) = CliTests.Run("slice", "--model", model, "--data", "builtin:iris", "--dedupe", "--directions", "sideways", "--out", svg);
        Assert.Equal(2, code);
        Assert.Contains("sideways", err);
        (code, _, err) = CliTests.Run("slice", "--model", model, "--data", "builtin:iris", "--dedupe", "--out", Path.Combine(_dir, "s.gif"));
        Assert.Equal(2, code);
        Assert.Contains(".png or .svg", err);

        var reportDir = Path.Combine(_dir, "report");
        (code, output, err) = CliTests.Run("report", "--model", model, "--data", "builtin:iris", "--dedupe", "--grid", "5", "--walk-steps", "1", "--out", reportDir);
        Assert.True(code == 0, output + err);
        var html = File.ReadAllText(Path.Combine(reportDir, "index.html"));
        Assert.Contains("landscape report --model", html);
        Assert.Contains("<h2>Certificate</h2>", html);
    }
}
