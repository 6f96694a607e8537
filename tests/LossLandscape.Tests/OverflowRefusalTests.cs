using System.Text.Json.Nodes;
using LossLandscape.Data;
using LossLandscape.Geometry;
using LossLandscape.Paths;
using LossLandscape.Reports;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 19, finding 4: a slice whose grid reaches a loss that is not finite, and a loss that underflows to 0 where the
/// residuals are not 0, are refused with one line naming where (the grid point, the exponent); nothing is printed as an
/// answer and nothing is written; no exception of the plot library reaches the user.
/// </summary>
public sealed class OverflowRefusalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-overflow-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    private string IrisModel()
    {
        var r = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "4", "--out", P("iris.json"));
        Assert.True(r.Code == 0, r.Err);
        return P("iris.json");
    }

    [Theory]
    [InlineData("1", "1e100", "α = ")]
    [InlineData("2", "1e80", "(α, β) = (")]
    [InlineData("2", "1e300", "(α, β) = (")]
    public void Slice_Reaching_A_Loss_That_Is_Not_Finite_Exits_2_Naming_The_Grid_Point_And_Writes_Nothing(string dims, string range, string coordinates)
    {
        var model = IrisModel();
        var r = CliTests.Run("slice", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--dims", dims, "--range", range, "--grid", "5",
            "--out", P("s.png"), "--json", P("s.json"));
        // Was: 1D exit 0 with "max L on the grid Infinity" and nulls in the JSON; 2D exit 70 from ScottPlot's heat map.
        CliGuardTests.AssertOneLineError(r, "at the slice's grid point " + coordinates);
        Assert.Contains("use a smaller range", r.Err);
        Assert.DoesNotContain("Infinity", r.Out);
        Assert.False(File.Exists(P("s.png")));
        Assert.False(File.Exists(P("s.json")));
    }

    [Fact]
    public void Slice_Names_The_Non_Finite_Grid_Point_Nearest_The_Model_And_Restores_The_Model()
    {
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species"));
        using var model = Models.ModelFile.Load(IrisModel()).ToModel();
        using var map = new ResidualMap(model, data);
        double before = map.Loss();
        var e = Assert.Throws<LandscapeInputException>(() => LossSlice.Compute(map, new SliceOptions([SliceDirection.Random], Grid: 5, Range: 1e100)));
        // Grid −1e100, −5e99, 0, 5e99, 1e100: the loss is finite only at 0, and ±5e99 are the nearest refused points.
        Assert.Contains("grid point α = -5E+99", e.Message);
        Assert.Contains("4 of the 5 grid points where L is not finite", e.Message);
        Assert.Equal(before, map.Loss());
    }

    [Fact]
    public void Loss_Underflowing_To_Zero_With_Nonzero_Residuals_Exits_2_Naming_The_Exponent()
    {
        // Targets 0.5 and all parameters 0: every output is 0, every |H_k| = 0.5, and 0.5^(10⁶) underflows to 0.
        File.WriteAllText(P("half.csv"), "x1,x2,y\n0,0,0.5\n1,0,0.5\n0,1,0.5\n");
        Assert.Equal(0, CliTests.Run("init", "--data", P("half.csv"), "--hidden", "2", "--out", P("m.json")).Code);
        var json = JsonNode.Parse(File.ReadAllText(P("m.json")))!.AsObject();
        var parameters = json["parameters"]!.AsArray();
        for (int i = 0; i < parameters.Count; i++)
        {
            parameters[i] = 0.0;
        }
        File.WriteAllText(P("zero.json"), json.ToJsonString());
        Assert.Equal(0, CliTests.Run("evaluate", "--model", P("zero.json"), "--data", P("half.csv")).Code);
        var r = CliTests.Run("evaluate", "--model", P("zero.json"), "--data", P("half.csv"), "--exponent", "1e6", "--json", P("e.json"));
        // Was: exit 0 with "loss L (a = 1E+06) │ 0".
        CliGuardTests.AssertOneLineError(r, "a = 1E+06, max|H_k| = 0.5) underflows to 0 at this point");
        Assert.Equal("", r.Out);
        Assert.False(File.Exists(P("e.json")));
    }

    [Fact]
    public void Plots_Refuse_Values_That_Are_Not_Finite_Before_ScottPlot_Sees_Them()
    {
        double[] alphas = [-1, 0, 1];
        var loss = new double[3, 3];
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                loss[i, j] = i == 0 ? double.PositiveInfinity : 1 + i + j;
            }
        }
        var slice = new SliceResult([SliceDirection.Random, SliceDirection.Random], alphas, alphas, loss, [1, 1], 1);
        // Was: ArgumentException "min must be a real number" from ScottPlot's heat map, and ArithmeticException from Math.Sign(NaN).
        Assert.Contains("figure 'slice'", Assert.Throws<LandscapeInputException>(() => Plots.Svg(Plots.Slice(slice, "slice"))).Message);
        Assert.Throws<LandscapeInputException>(() => Plots.Spectrum([1.0, double.NaN], 1e-12, 1, "spectrum"));
        // Finite values whose span float64 cannot hold: refused with one line, not ScottPlot's InvalidOperationException.
        var wide = new SliceResult([SliceDirection.Random], [-1e308, 0, 1e308], [], new double[,] { { 1 }, { 2 }, { 3 } }, [1], 2);
        Assert.Throws<LandscapeInputException>(() => Plots.Svg(Plots.Slice(wide, "wide")));
    }
}
