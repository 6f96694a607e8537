using System.Text.Json;
using LossLandscape.Paths;

namespace LossLandscape.Tests;

/// <summary>
/// <c>landscape connect</c>, <c>report --path</c> and the path file in-process: two minima of iris (deduped,
/// standardized, the species code as one regression target, width 32 tanh) trained by Gauss–Newton from seeds 1 and 2.
/// </summary>
public sealed class ConnectCliTests : IClassFixture<ConnectCliTests.Minima>
{
    private static readonly string[] Iris = ["--data", "builtin:iris", "--dedupe"];

    private readonly Minima _minima;

    public ConnectCliTests(Minima minima) => _minima = minima;

    /// <summary>Two trained minima, written once for the class.</summary>
    public sealed class Minima : IDisposable
    {
        public Minima()
        {
            foreach (var (file, seed) in new[] { (A, "1"), (B, "2") })
            {
                var (code, output, err) = CliTests.Run(["train", .. Iris, "--standardize", "--hidden", "32", "--activation", "tanh", "--optimizer", "gauss-newton",
                    "--steps", "1000", "--seed", seed, "--out", file]);
                Assert.True(code == 0, output + err);
            }
            var (c, o, e) = CliTests.Run(["init", .. Iris, "--standardize", "--hidden", "16", "--activation", "tanh", "--out", Narrow]);
            Assert.True(c == 0, o + e);
        }

        public string Dir { get; } = Directory.CreateTempSubdirectory("landscape-connect-").FullName;

        public string A => Path.Combine(Dir, "a.json");

        public string B => Path.Combine(Dir, "b.json");

        /// <summary>A network of another width (16), off M.</summary>
        public string Narrow => Path.Combine(Dir, "narrow.json");

        public string P(string name) => Path.Combine(Dir, name);

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    [Fact]
    public void Linear_Path_Writes_Json_Path_File_And_Plot_That_Read_Back()
    {
        string json = _minima.P("linear.json"), path = _minima.P("linear-path.json"), plot = _minima.P("linear.svg");
        var (code, output, err) = CliTests.Run(["connect", "--model", _minima.A, "--to", _minima.B, .. Iris, "--method", "linear", "--points", "11",
            "--out", path, "--plot", plot, "--json", json]);
        Assert.True(code == 0, output + err);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var root = doc.RootElement;
        Assert.Equal(193, root.GetProperty("n").GetInt32());
        Assert.Equal(149, root.GetProperty("constraints").GetInt32());
        var m = root.GetProperty("methods")[0];
        foreach (var field in new[] { "method", "aligned", "maxLoss", "barrier", "maxAbsResidual", "lengthRatio", "vertices", "evaluations", "seconds", "status", "certified" })
        {
            Assert.True(m.TryGetProperty(field, out _), $"methods[0] has no {field}");
        }
        foreach (var field in new[] { "forward", "gradient", "jacobian" })
        {
            Assert.True(m.GetProperty("evaluations").TryGetProperty(field, out _), $"evaluations has no {field}");
        }
        Assert.Equal("linear", m.GetProperty("method").GetString());
        Assert.False(m.GetProperty("certified").GetBoolean());
        // Two independently trained minima: the straight line between them climbs far above L(A), L(B) ≈ 1e−28.
        Assert.True(m.GetProperty("barrier").GetDouble() > 1, $"barrier {m.GetProperty("barrier").GetDouble()}");
        Assert.Equal(1.0, m.GetProperty("lengthRatio").GetDouble(), 12);
        // 11 evenly spaced t = i/10, and the 9 interior points j/10 of the one segment [0, 1], which are the same t: 11 points.
        Assert.Equal(11, m.GetProperty("points").GetInt32());

        var file = PathFile.Load(path);
        Assert.Equal("linear", file.Method);
        Assert.Equal(PathInterpolation.Straight, file.Interpolation);
        Assert.Equal(2, file.Vertices.Count);
        var a = LossLandscape.Models.ModelFile.Load(_minima.A);
        var b = LossLandscape.Models.ModelFile.Load(_minima.B);
        Assert.Equal(a.Parameters, file.Vertices[0].Parameters);
        Assert.Equal(b.Parameters, file.Vertices[1].Parameters);
        Assert.Equal(a.Network.ParameterCount, file.Network.ParameterCount);
        Assert.Single(file.Methods);
        Assert.Equal(m.GetProperty("maxLoss").GetDouble(), file.Methods[0].MaxLoss);
        Assert.Equal(11, file.Profiles[0].Points.Count);
        Assert.StartsWith("<svg", File.ReadAllText(plot).TrimStart());

        var (rc, rout, rerr) = CliTests.Run(["report", "--model", _minima.A, .. Iris, "--path", path, "--walk-steps", "0", "--grid", "5", "--out", _minima.P("report")]);
        Assert.True(rc == 0, rout + rerr);
        var page = File.ReadAllText(Path.Combine(_minima.P("report"), "index.html"));
        Assert.Contains("Paths between minima", page);
        Assert.Contains("max |H| along the paths", page);
    }

    /// <summary>
    /// A ↔ π(A) on 12 synthetic points (3-8-1 tanh, trained to M): the straight line between A and its permutation climbs,
    /// the manifold path joins them inside M and is certified, weight matching maps π(A) back onto A exactly, and the path
    /// file holds the manifold path.
    /// </summary>
    [Fact]
    public void Manifold_Path_Joins_A_To_Its_Permutation_And_Weight_Matching_Undoes_The_Permutation()
    {
        string[] data = ["--data", "synthetic:12,3,1,4"];
        string a = _minima.P("s-a.json"), b = _minima.P("s-b.json"), json = _minima.P("s.json"), path = _minima.P("s-path.json");
        var (code, output, err) = CliTests.Run(["train", .. data, "--hidden", "8", "--activation", "tanh", "--optimizer", "gauss-newton", "--steps", "300", "--seed", "1", "--out", a]);
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run(["permute", "--model", a, "--seed", "7", "--out", b]);
        Assert.True(code == 0, output + err);

        (code, output, err) = CliTests.Run(["connect", "--model", a, "--to", b, .. data, "--method", "linear,manifold", "--out", path, "--json", json]);
        Assert.True(code == 0, output + err);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            var methods = doc.RootElement.GetProperty("methods");
            Assert.Equal("linear", methods[0].GetProperty("method").GetString());
            Assert.True(methods[0].GetProperty("barrier").GetDouble() > 1e-3, "the straight line between A and π(A) leaves M");
            var manifold = methods[1];
            Assert.Equal("manifold", manifold.GetProperty("method").GetString());
            Assert.True(manifold.GetProperty("certified").GetBoolean(), manifold.GetProperty("detail").GetString());
            Assert.Equal("converged", manifold.GetProperty("status").GetString());
            Assert.True(manifold.GetProperty("vertices").GetInt32() >= 200);
            double tolerance = doc.RootElement.GetProperty("tolerance").GetDouble();
            Assert.True(manifold.GetProperty("maxAbsResidual").GetDouble() <= tolerance);
            var segments = manifold.GetProperty("certificate").GetProperty("segments");
            Assert.Equal(manifold.GetProperty("vertices").GetInt32() - 1, segments.GetArrayLength());
            foreach (var field in new[] { "length", "vertexMaxAbsResidual", "chordMaxAbsResidual", "straightChordMaxAbsResidual", "sigmaMinStart", "sigmaMinEnd" })
            {
                Assert.True(segments[0].TryGetProperty(field, out _), $"segments[0] has no {field}");
            }
        }
        var file = PathFile.Load(path);
        Assert.Equal("manifold", file.Method);
        Assert.Equal(PathInterpolation.Projected, file.Interpolation);
        Assert.Equal(LossLandscape.Models.ModelFile.Load(b).Parameters, file.Vertices[^1].Parameters);

        (code, output, err) = CliTests.Run(["connect", "--model", a, "--to", b, .. data, "--method", "linear", "--align", "weight-matching", "--json", json]);
        Assert.True(code == 0, output + err);
        Assert.Contains("weight matching mapped B onto A exactly", output);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            Assert.True(doc.RootElement.GetProperty("identical").GetBoolean());
            Assert.Equal(0.0, doc.RootElement.GetProperty("alignment").GetProperty("distanceAfter").GetDouble());
        }
    }

    [Fact]
    public void An_Endpoint_Off_M_Is_Refused_For_A_Manifold_Path_And_Another_Network_Always()
    {
        var (code, output, err) = CliTests.Run(["connect", "--model", _minima.A, "--to", _minima.Narrow, .. Iris, "--method", "linear"]);
        Assert.True(code == 2, output + err);
        Assert.Contains("the endpoints are different networks", err);

        string init = _minima.P("init32.json");
        (code, output, err) = CliTests.Run(["init", .. Iris, "--standardize", "--hidden", "32", "--activation", "tanh", "--out", init]);
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run(["connect", "--model", _minima.A, "--to", init, .. Iris, "--method", "manifold"]);
        Assert.True(code == 2, output + err);
        Assert.Contains("is not on M", err);
        Assert.Contains("train with Gauss–Newton", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    public static TheoryData<string[], string> BadInput() => new()
    {
        { ["--points", "1"], "--points" },
        { ["--method", "linear,spline"], "unknown method 'spline'" },
        { ["--align", "git"], "--align" },
        { ["--bends", "2"], "--bends" },
        { ["--budget", "0"], "--budget" },
        { ["--plot", "x.pdf"], ".svg or .png" },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void Bad_Options_Are_Exit_2_With_One_Line(string[] extra, string message)
    {
        var (code, output, err) = CliTests.Run(["connect", "--model", _minima.A, "--to", _minima.B, .. Iris, .. extra]);
        Assert.True(code == 2, output + err);
        Assert.Contains(message, err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void An_Output_That_Names_An_Input_Is_Refused_And_The_Input_Kept()
    {
        var before = File.ReadAllText(_minima.B);
        var (code, output, err) = CliTests.Run(["connect", "--model", _minima.A, "--to", _minima.B, .. Iris, "--method", "linear", "--out", _minima.B]);
        Assert.True(code == 2, output + err);
        Assert.Contains("--out and --to name the same file", err);
        Assert.Equal(before, File.ReadAllText(_minima.B));
    }

    [Fact]
    public void A_Path_File_That_Is_Not_One_Is_Exit_2()
    {
        var (code, output, err) = CliTests.Run(["report", "--model", _minima.A, .. Iris, "--path", _minima.A, "--out", _minima.P("bad-report")]);
        Assert.True(code == 2, output + err);
        Assert.Contains("not a path file", err);
    }
}
