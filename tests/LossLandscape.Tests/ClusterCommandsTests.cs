using System.Text.Json;

namespace LossLandscape.Tests;

/// <summary>
/// The commands that took <c>--cluster</c> only once every command built its problem in one place (issue 20): <c>slice</c>,
/// <c>connect</c> and <c>report</c> on the cluster write the single-process numbers (1e-10 relative), and say that they ran
/// on it.
/// </summary>
[Collection(OrleansClusterCollection.Name)]
public sealed class ClusterCommandsTests(OrleansClusterFixture fixture)
{
    /// <summary>Six rows, two inputs: small enough for a network to reach M in a few Gauss–Newton steps.</summary>
    private const string SixRows = "x1,x2,y\n0,0,0.5\n1,0,-0.3\n0,1,0.8\n1,1,0.1\n0.5,0.2,-0.6\n0.3,0.9,0.4\n";

    /// <summary>The agreement of a number computed here and on the cluster: 1e-10 relative (the bound).</summary>
    private const double Agreement = 1e-10;

    private static void Close(double here, double there, string what) =>
        Assert.True(Math.Abs(here - there) <= Agreement * Math.Max(1.0, Math.Abs(here)), $"{what}: {here:R} here, {there:R} on the cluster");

    private static double[] Doubles(JsonElement array) => array.EnumerateArray().Select(e => e.GetDouble()).ToArray();

    [Fact]
    public void Slice_With_Cluster_Writes_The_Single_Process_Grid()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-slice-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir), model = Path.Combine(dir, "m.json");
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "4", "--out", model]).Code);
            string[] slice = ["slice", "--model", model, .. data, "--directions", "random,filter", "--grid", "5", "--seed", "4"];
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json");
            var (code, _, err) = CliTests.Run([.. slice, "--out", Path.Combine(dir, "a.svg"), "--json", local]);
            Assert.True(code == 0, err);
            (code, _, err) = CliTests.Run([.. slice, "--out", Path.Combine(dir, "b.svg"), "--cluster", file, "--json", remote]);
            Assert.True(code == 0, err);
            Assert.Contains("loaded on", err, StringComparison.Ordinal);
            using var a = JsonDocument.Parse(File.ReadAllText(local));
            using var b = JsonDocument.Parse(File.ReadAllText(remote));
            Close(a.RootElement.GetProperty("centerLoss").GetDouble(), b.RootElement.GetProperty("centerLoss").GetDouble(), "L at the point");
            var x = a.RootElement.GetProperty("loss").EnumerateArray().SelectMany(Doubles).ToArray();
            var y = b.RootElement.GetProperty("loss").EnumerateArray().SelectMany(Doubles).ToArray();
            Assert.Equal(25, x.Length);
            Assert.Equal(x.Length, y.Length);
            for (int i = 0; i < x.Length; i++)
            {
                Close(x[i], y[i], $"grid point {i}");
            }
            Assert.Equal(3, b.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
            Assert.False(a.RootElement.TryGetProperty("cluster", out _));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Connect_With_Cluster_Writes_The_Single_Process_Paths_For_Every_Method()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-connect-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir), csv = Path.Combine(dir, "six.csv");
            File.WriteAllText(csv, SixRows);
            string[] data = ["--data", csv];
            // Two minima: Gauss–Newton from two initialisations, to M (n = 33 > ℓd = 6).
            string a = Path.Combine(dir, "a.json"), b = Path.Combine(dir, "b.json");
            foreach (var (path, seed) in new[] { (a, "1"), (b, "2") })
            {
                var trained = CliTests.Run(["train", .. data, "--hidden", "8", "--optimizer", "gauss-newton", "--steps", "30", "--seed", seed, "--out", path]);
                Assert.True(trained.Code == 0, trained.Err);
            }
            string[] connect = ["connect", "--model", a, "--to", b, .. data, "--method", "linear,bezier,polychain,neb,manifold", "--budget", "40", "--points", "9", "--seed", "5"];
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json");
            var (code, _, err) = CliTests.Run([.. connect, "--json", local]);
            Assert.True(code is 0 or 1, err);
            var (codeThere, _, errThere) = CliTests.Run([.. connect, "--cluster", file, "--json", remote]);
            Assert.True(codeThere == code, errThere);
            using var x = JsonDocument.Parse(File.ReadAllText(local));
            using var y = JsonDocument.Parse(File.ReadAllText(remote));
            var here = x.RootElement.GetProperty("methods").EnumerateArray().ToArray();
            var there = y.RootElement.GetProperty("methods").EnumerateArray().ToArray();
            Assert.Equal(5, here.Length);
            Assert.Equal(here.Length, there.Length);
            for (int i = 0; i < here.Length; i++)
            {
                string method = here[i].GetProperty("method").GetString()!;
                Assert.Equal(method, there[i].GetProperty("method").GetString());
                Assert.Equal(here[i].GetProperty("status").GetString(), there[i].GetProperty("status").GetString());
                Assert.Equal(here[i].GetProperty("vertices").GetInt32(), there[i].GetProperty("vertices").GetInt32());
                Assert.Equal(here[i].GetProperty("certified").GetBoolean(), there[i].GetProperty("certified").GetBoolean());
                foreach (var field in new[] { "maxLoss", "barrier", "lossA", "lossB" })
                {
                    Close(here[i].GetProperty(field).GetDouble(), there[i].GetProperty(field).GetDouble(), $"{method}: {field}");
                }
            }
            Assert.Equal(3, y.RootElement.GetProperty("cluster").GetProperty("shards").GetInt32());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Report_With_Cluster_Writes_The_Page_From_The_Workers_Sums()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-report-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir), model = Path.Combine(dir, "m.json");
            string[] data = ["--data", "builtin:iris", "--one-hot", "species"];
            Assert.Equal(0, CliTests.Run(["init", .. data, "--hidden", "3", "--out", model]).Code);
            string here = Path.Combine(dir, "here"), there = Path.Combine(dir, "there");
            string[] report = ["report", "--model", model, .. data, "--grid", "5", "--walk-steps", "0"];
            var (code, _, err) = CliTests.Run([.. report, "--out", here]);
            Assert.True(code == 0, err);
            (code, _, err) = CliTests.Run([.. report, "--out", there, "--cluster", file]);
            Assert.True(code == 0, err);
            Assert.Contains("loaded on", err, StringComparison.Ordinal);
            ReportPages.AssertSameCells(Path.Combine(here, "index.html"), Path.Combine(there, "index.html"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
