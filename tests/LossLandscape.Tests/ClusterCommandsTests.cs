using System.Text.Json;
using LossLandscape.Models;

namespace LossLandscape.Tests;

/// <summary>
/// The commands that took <c>--cluster</c> only once every command built its problem in one place (issue 20): <c>slice</c>,
/// <c>connect</c>, <c>report</c> and <c>construct</c>'s polish on the cluster write the single-process numbers (1e-10
/// relative), and say that they ran on it.
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

    /// <summary>
    /// What <c>construct</c> decides on the driver before the polish (the direction, the scale, θ, the conditioning and the
    /// candidates tried) and the network's shape: the same with or without <c>--cluster</c>, bit for bit.
    /// </summary>
    private static readonly string[] ConstructChoices =
        ["direction", "relativeMinGap", "scaledMinGap", "scaledRange", "biasFraction", "triangularCondition", "amplification", "candidates", "goal",
         "d", "outputs", "n", "inputs", "widths", "activation", "copies"];

    /// <summary>
    /// The polish's residuals, max|H| before and after it, measured by the workers on their shards' rows: each shard's forward
    /// pass over its own rows rounds differently from one pass over all rows (after the triangular solve on iris one-hot, 1.2e-13 here against 1.4e-13 on the cluster), so these
    /// agree to 1e-10 (absolute, as they are far below 1), not bit for bit.
    /// </summary>
    private static readonly string[] ConstructMeasured = ["triangularResidual", "maxAbsResidual"];

    [Theory]
    [InlineData("one-hot")]
    [InlineData("regression")]
    public void Construct_With_Cluster_Writes_The_Single_Process_Network(string which)
    {
        var dir = Directory.CreateTempSubdirectory("landscape-cluster-construct-").FullName;
        try
        {
            string file = fixture.WriteClusterFile(dir);
            // Iris deduplicated, d = 149 (three shards of about 50 rows). One-hot (ℓ = 3): the polish takes an output-layer step.
            // Regression on the last column: it takes full Gauss–Newton steps, J factored from the shards' rows.
            string[] construct = which == "one-hot"
                ? ["construct", "--data", "builtin:iris", "--one-hot", "species", "--dedupe", "--standardize"]
                : ["construct", "--data", "builtin:iris", "--dedupe"];
            string localModel = Path.Combine(dir, "local-m.json"), remoteModel = Path.Combine(dir, "remote-m.json");
            string local = Path.Combine(dir, "local.json"), remote = Path.Combine(dir, "remote.json");
            var (code, output, err) = CliTests.Run([.. construct, "--out", localModel, "--json", local]);
            Assert.True(code == 0, output + err);
            var (codeThere, outputThere, errThere) = CliTests.Run([.. construct, "--cluster", file, "--out", remoteModel, "--json", remote]);
            Assert.True(codeThere == 0, outputThere + errThere);
            Assert.Contains("loaded on", errThere, StringComparison.Ordinal);
            Assert.Contains("cluster (the polish)", outputThere, StringComparison.Ordinal);
            using var a = JsonDocument.Parse(File.ReadAllText(local));
            using var b = JsonDocument.Parse(File.ReadAllText(remote));
            var (x, y) = (a.RootElement, b.RootElement);
            foreach (var field in ConstructChoices)
            {
                Assert.Equal(x.GetProperty(field).ToString(), y.GetProperty(field).ToString());
            }
            foreach (var field in ConstructMeasured)
            {
                Close(x.GetProperty(field).GetDouble(), y.GetProperty(field).GetDouble(), field);
            }
            Assert.True(x.GetProperty("meetsGoal").GetBoolean() && y.GetProperty("meetsGoal").GetBoolean());
            Assert.False(y.TryGetProperty("fullStepsSkipped", out _));
            // The polish stops at the rounding floor, where whether a step still lowers max|H| is decided by rounding: the
            // regression case takes 0 output-layer and 4 full steps here, 1 and 8 on the cluster (this machine). So the steps
            // are not compared; the point they reach is, parameter by parameter.
            foreach (var root in new[] { x, y })
            {
                Assert.InRange(root.GetProperty("outputLayerSteps").GetInt32(), 0, 4);
                Assert.InRange(root.GetProperty("gaussNewtonSteps").GetInt32(), 0, 8);
            }
            if (which == "regression")
            {
                Assert.True(y.GetProperty("gaussNewtonSteps").GetInt32() > 0, "the cluster's polish took no full Gauss–Newton step: J was not factored from the shards");
            }
            var here = ModelFile.Load(localModel);
            var there = ModelFile.Load(remoteModel);
            Assert.Equal(here.Network.ParameterCount, there.Network.ParameterCount);
            Assert.Equal(here.Parameters.Length, there.Parameters.Length);
            for (int i = 0; i < here.Parameters.Length; i++)
            {
                Close(here.Parameters[i], there.Parameters[i], $"p[{i}]");
            }
            var cluster = y.GetProperty("cluster");
            Assert.Equal(3, cluster.GetProperty("shards").GetInt32());
            // At least max|H| after the triangular solve and after the polish were the workers' (two distributed calls).
            Assert.True(cluster.GetProperty("calls").GetInt32() >= 2);
            Assert.False(x.TryGetProperty("cluster", out _));
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
