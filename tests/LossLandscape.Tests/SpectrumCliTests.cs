using System.Text.Json;

namespace LossLandscape.Tests;

/// <summary><c>landscape spectrum</c> and <c>landscape trace</c> in-process: exit codes, orders, agreement with the dense spectrum.</summary>
public sealed class SpectrumCliTests : IDisposable
{
    private static readonly string[] Data = ["--data", "builtin:iris", "--one-hot", "species"];

    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-spectrum-").FullName;
    private readonly string _model;

    public SpectrumCliTests()
    {
        _model = Path.Combine(_dir, "m.json");
        var (code, _, err) = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "8", "--out", _model);
        Assert.True(code == 0, err);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private JsonDocument Spectrum(string name, params string[] args)
    {
        var json = Path.Combine(_dir, name);
        var (code, output, err) = CliTests.Run(["spectrum", "--model", _model, .. Data, .. args, "--json", json]);
        Assert.True(code == 0, output + err);
        Assert.Contains("Hessian-vector products", output);
        return JsonDocument.Parse(File.ReadAllText(json));
    }

    private static double[] Numbers(JsonDocument doc, string name) =>
        doc.RootElement.GetProperty(name).EnumerateArray().Select(e => e.GetDouble()).ToArray();

    [Theory]
    [InlineData("largest")]
    [InlineData("smallest")]
    [InlineData("magnitude")]
    public void Spectrum_Lanczos_Matches_Dense_In_The_Order_Which_Asks(string which)
    {
        using var dense = Spectrum($"dense-{which}.json", "--method", "dense", "--k", "5", "--which", which);
        using var lanczos = Spectrum($"lanczos-{which}.json", "--method", "lanczos", "--k", "5", "--which", which);
        var all = Numbers(dense, "eigenvalues");
        var found = Numbers(lanczos, "eigenvalues");
        var residuals = Numbers(lanczos, "residuals");
        Assert.Equal(5, all.Length);
        Assert.Equal(5, found.Length);
        Assert.Equal(5, residuals.Length);
        Assert.Equal(67, dense.RootElement.GetProperty("hessianVectorProducts").GetInt64()); // n products build the dense matrix
        Assert.True(lanczos.RootElement.GetProperty("hessianVectorProducts").GetInt64() > 0);
        Assert.True(lanczos.RootElement.GetProperty("seconds").GetDouble() >= 0);
        Assert.Equal("converged", lanczos.RootElement.GetProperty("status").GetString());

        Func<double, double> key = which switch
        {
            "largest" => v => -v,
            "smallest" => v => v,
            _ => v => -Math.Abs(v),
        };
        foreach (var values in new[] { all, found })
        {
            for (int i = 1; i < values.Length; i++)
            {
                Assert.True(key(values[i - 1]) <= key(values[i]), $"{which}: {string.Join(", ", values)} is out of order");
            }
        }

        double scale = all.Max(Math.Abs);
        for (int i = 0; i < 5; i++)
        {
            Assert.True(Math.Abs(found[i] - all[i]) <= Tolerances.LanczosAgreement * scale, $"λ{i + 1}: Lanczos {found[i]} vs dense {all[i]}");
            Assert.True(residuals[i] <= Tolerances.LanczosAgreement * scale * Tolerances.ResidualRecomputation, $"residual {residuals[i]} of λ{i + 1}");
        }
    }

    [Fact]
    public void Spectrum_Slq_Density_Integrates_To_One_And_States_Its_Defaults()
    {
        using var slq = Spectrum("slq.json", "--method", "slq");
        var grid = Numbers(slq, "grid");
        var density = Numbers(slq, "density");
        Assert.Equal(grid.Length, density.Length);
        double mass = 0;
        for (int i = 1; i < grid.Length; i++)
        {
            mass += (grid[i] - grid[i - 1]) * (density[i] + density[i - 1]) / 2;
        }
        Assert.InRange(mass, 1 - Tolerances.DensityMass, 1 + Tolerances.DensityMass);
        var moments = Numbers(slq, "moments");
        Assert.Equal(1.0, moments[0], Tolerances.QuadratureWeightDigits); // tr(H⁰)/n = 1: the quadrature weights sum to 1
        var options = slq.RootElement.GetProperty("options");
        Assert.Equal(90, options.GetProperty("steps").GetInt32());
        Assert.Equal(10, options.GetProperty("probes").GetInt32());
        Assert.Equal(1e-5, options.GetProperty("sigma2").GetDouble());
        Assert.True(slq.RootElement.GetProperty("hessianVectorProducts").GetInt64() > 0);
        Assert.True(slq.RootElement.TryGetProperty("seconds", out _));
    }

    [Fact]
    public void Spectrum_Gram_Says_It_Holds_On_M_Only()
    {
        var (code, output, err) = CliTests.Run(["spectrum", "--model", _model, .. Data, "--method", "gram", "--k", "3"]);
        Assert.True(code == 0, err);
        Assert.Contains("NOT on M", output); // a random initialisation does not interpolate
    }

    [Fact]
    public void Spectrum_Lanczos_Smallest_At_A_Point_Of_M_Prints_Zeros_With_Their_Multiplicity()
    {
        // A point of M by Gauss–Newton (iris every fifth row, one-hot, width 40: n = 323, ℓd = 90), written as files.
        var m = new Curvature.PointOfM();
        var csv = new System.Text.StringBuilder("x0,x1,x2,x3,y0,y1,y2\n");
        for (int i = 0; i < m.Data.Count; i++)
        {
            var row = m.Data.InputRow(i).Concat(Enumerable.Range(0, m.Data.OutputDim).Select(j => m.Data.Target(i, j)));
            csv.Append(string.Join(",", row.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))).Append('\n');
        }
        var data = Path.Combine(_dir, "m.csv");
        var model = Path.Combine(_dir, "on-m.json");
        File.WriteAllText(data, csv.ToString());
        LossLandscape.Models.ModelFile.Save(model, m.Point);
        var json = Path.Combine(_dir, "smallest.json");
        var (code, output, err) = CliTests.Run("spectrum", "--model", model, "--data", data, "--target", "y0", "--target", "y1", "--target", "y2",
            "--method", "lanczos", "--which", "smallest", "--k", "5", "--json", json);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        int n = root.GetProperty("n").GetInt32();
        Assert.Equal(323, n);
        Assert.Equal(Enumerable.Repeat(0.0, 5), Numbers(doc, "eigenvalues"));
        Assert.All(root.GetProperty("converged").EnumerateArray(), c => Assert.True(c.GetBoolean()));
        Assert.Equal("converged", root.GetProperty("status").GetString());
        Assert.True(root.GetProperty("onManifold").GetBoolean());
        var zeros = root.GetProperty("zeros");
        Assert.Equal(n - 90, zeros.GetProperty("multiplicity").GetInt32());
        Assert.True(zeros.GetProperty("residualTermEstimated").GetBoolean());
        double bound = zeros.GetProperty("bound").GetDouble();
        Assert.True(bound < zeros.GetProperty("lowestNonzero").GetDouble(), $"bound {bound}");
        Assert.Contains("zero within ±", root.GetProperty("note").GetString());
        Assert.Contains("zero eigenvalues", output);
        Assert.Contains("0 ± ", output);
        Assert.DoesNotContain("NOT CONVERGED", output);
    }

    [Fact]
    public void Spectrum_Unconverged_Lanczos_Values_Are_Marked_In_Json_And_Table()
    {
        var (code, output, err) = CliTests.Run(["spectrum", "--model", _model, .. Data, "--method", "lanczos", "--k", "5", "--max-iterations", Tolerances.TooFewLanczosSteps.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json", Path.Combine(_dir, "unconverged.json")]);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "unconverged.json")));
        var converged = doc.RootElement.GetProperty("converged").EnumerateArray().Select(e => e.GetBoolean()).ToArray();
        Assert.Equal(Numbers(doc, "eigenvalues").Length, converged.Length);
        Assert.Contains(false, converged);
        Assert.Equal("stoppedWithoutConvergence", doc.RootElement.GetProperty("status").GetString());
        Assert.Contains("NOT CONVERGED", output); // in the λ column: the value is shown as the bound it is
        Assert.Contains("NOT converged", output); // and counted in the summary
    }

    [Fact]
    public void Spectrum_Dense_Json_Keeps_All_n_Eigenvalues()
    {
        using var dense = Spectrum("dense-all.json", "--method", "dense", "--k", "3");
        var all = Numbers(dense, "allEigenvalues");
        Assert.Equal(67, all.Length);
        Assert.True(all.Zip(all.Skip(1)).All(p => p.First >= p.Second), "not descending");
        Assert.Equal(all.Take(3), Numbers(dense, "eigenvalues"));
        Assert.Equal(3, dense.RootElement.GetProperty("converged").GetArrayLength());
    }

    [Fact]
    public void Spectrum_Gram_Over_Budget_Exits_2_Naming_The_Alternatives()
    {
        var (code, _, err) = CliTests.Run(["spectrum", "--model", _model, .. Data, "--method", "gram", "--budget-gb", "2e-5"]);
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("over the memory budget", err);
        Assert.Contains("--method lanczos", err);
    }

    [Fact]
    public void Trace_HutchPlusPlus_Is_Within_Four_Standard_Errors_Of_The_Exact_Trace()
    {
        var exactJson = Path.Combine(_dir, "exact.json");
        var hutchJson = Path.Combine(_dir, "hutch.json");
        var (code, output, err) = CliTests.Run(["trace", "--model", _model, .. Data, "--method", "exact", "--json", exactJson]);
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run(["trace", "--model", _model, .. Data, "--method", "hutch++", "--probes", "30", "--seed", "1", "--json", hutchJson]);
        Assert.True(code == 0, output + err);
        using var exact = JsonDocument.Parse(File.ReadAllText(exactJson));
        using var hutch = JsonDocument.Parse(File.ReadAllText(hutchJson));
        double truth = exact.RootElement.GetProperty("trace").GetDouble();
        double estimate = hutch.RootElement.GetProperty("trace").GetDouble();
        double error = hutch.RootElement.GetProperty("standardError").GetDouble();
        Assert.Equal(67, exact.RootElement.GetProperty("hessianVectorProducts").GetInt64());
        Assert.Equal(30, hutch.RootElement.GetProperty("hessianVectorProducts").GetInt64());
        Assert.True(Math.Abs(estimate - truth) <= Tolerances.StandardErrors * error + Tolerances.ExactAgreement * Math.Abs(truth),
            $"Hutch++ {estimate} ± {error} vs exact {truth}");
    }

    [Fact]
    public void Trace_Hutchinson_Reports_Standard_Error_Products_And_Time()
    {
        var json = Path.Combine(_dir, "hutchinson.json");
        var (code, output, err) = CliTests.Run(["trace", "--model", _model, .. Data, "--method", "hutchinson", "--probes", "20", "--json", json]);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        Assert.True(doc.RootElement.GetProperty("standardError").GetDouble() > 0);
        Assert.Equal(20, doc.RootElement.GetProperty("hessianVectorProducts").GetInt64());
        Assert.True(doc.RootElement.TryGetProperty("seconds", out _));
    }

    [Theory]
    [InlineData("--method", "qr", "--method: 'qr' is not one of dense, gram, lanczos, slq")]
    [InlineData("--k", "0", "--k: 0 is not a positive number")]
    [InlineData("--k", "-3", "--k: -3 is not a positive number")]
    [InlineData("--which", "middle", "--which: 'middle' is not one of")]
    [InlineData("--operator", "fisher", "--operator: 'fisher' is not one of hessian, ggn")]
    public void Spectrum_Bad_Input_Exits_2_With_One_Line(string option, string value, string message)
    {
        var (code, _, err) = CliTests.Run(["spectrum", "--model", _model, .. Data, option, value]);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }

    [Fact]
    public void Spectrum_Dense_Over_Budget_Exits_2_Naming_Lanczos_And_Slq()
    {
        var (code, _, err) = CliTests.Run(["spectrum", "--model", _model, .. Data, "--method", "dense", "--budget-gb", "2e-5"]);
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains("over the memory budget", err);
        Assert.Contains("--method lanczos", err);
        Assert.Contains("--method slq", err);
    }

    [Fact]
    public void Trace_Unknown_Method_Exits_2()
    {
        var (code, _, err) = CliTests.Run(["trace", "--model", _model, .. Data, "--method", "girard"]);
        Assert.Equal(2, code);
        Assert.Contains("--method: 'girard' is not one of hutchinson, hutch++, exact", err);
        Assert.Single(err.TrimEnd().Split('\n'));
    }
}
