using LossLandscape.Cluster;

namespace LossLandscape.Tests;

/// <summary>
/// <c>landscape cluster init</c>, <c>landscape worker</c> and <c>--cluster</c>'s refusals, in process: every refusal is exit 2
/// with one line, and none of these needs a running cluster.
/// </summary>
public sealed class ClusterCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-cluster-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private static void OneErrorLine(int code, string err, string contains)
    {
        Assert.Equal(2, code);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("landscape: error: ", lines[0]);
        Assert.Contains(contains, lines[0]);
    }

    [Fact]
    public void Cluster_Init_Writes_A_File_That_Names_Every_Worker_And_Reads_Back()
    {
        string file = PathOf("cluster.json");
        var (code, output, _) = CliTests.Run("cluster", "init", "--workers", "4", "--base-port", "31000", "--out", file);
        Assert.Equal(0, code);
        Assert.Contains("--index 3", output);
        var config = ClusterConfig.Load(file);
        Assert.Equal(4, config.Workers.Count);
        Assert.Equal(4, config.Shards);
        Assert.Equal(new WorkerEndpoint(31006, 31007), config.Workers[3]);
        Assert.Equal(ClusterConfig.LocalhostMembership, config.Membership);
    }

    [Fact]
    public void Bad_Cluster_Files_And_Options_Exit_2_With_One_Line()
    {
        var (code, _, err) = CliTests.Run("cluster", "init", "--workers", "0", "--out", PathOf("z.json"));
        OneErrorLine(code, err, "--workers");
        Assert.False(File.Exists(PathOf("z.json")));

        (code, _, err) = CliTests.Run("cluster", "init", "--workers", "2", "--base-port", "65534", "--out", PathOf("z.json"));
        OneErrorLine(code, err, "--base-port");

        string model = PathOf("m.json");
        Assert.Equal(0, CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "3", "--out", model).Code);

        File.WriteAllText(PathOf("bad.json"), "{\"format\": \"something else\"}");
        (code, _, err) = CliTests.Run("spectrum", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--cluster", PathOf("bad.json"));
        OneErrorLine(code, err, "format");

        File.WriteAllText(PathOf("etcd.json"), (ClusterConfig.Localhost(2) with { Membership = "etcd" }).ToJson());
        (code, _, err) = CliTests.Run("worker", "--cluster", PathOf("etcd.json"), "--index", "0");
        OneErrorLine(code, err, "membership 'etcd' is not supported; supported: localhost, redis");

        // Redis membership names its server; TLS needs it.
        File.WriteAllText(PathOf("redis.json"), (ClusterConfig.Localhost(2) with { Membership = "redis" }).ToJson());
        (code, _, err) = CliTests.Run("worker", "--cluster", PathOf("redis.json"), "--index", "0");
        OneErrorLine(code, err, "is not HOST:PORT of a Redis server");
        File.WriteAllText(PathOf("tls.json"), (ClusterConfig.Localhost(2) with { Tls = true }).ToJson());
        (code, _, err) = CliTests.Run("worker", "--cluster", PathOf("tls.json"), "--index", "0");
        OneErrorLine(code, err, "tls needs redis membership");

        // More shards than iris has rows: refused before any connection is tried.
        File.WriteAllText(PathOf("many.json"), (ClusterConfig.Localhost(2, 31100) with { Shards = 151 }).ToJson());
        (code, _, err) = CliTests.Run("spectrum", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--cluster", PathOf("many.json"));
        OneErrorLine(code, err, "151 shards of 150 rows");

        File.WriteAllText(PathOf("two.json"), ClusterConfig.Localhost(2, 31200).ToJson());
        (code, _, err) = CliTests.Run("worker", "--cluster", PathOf("two.json"), "--index", "2");
        OneErrorLine(code, err, "--index: 2");

        // No worker started at the file's ports: the client gives up after its connect timeout (15 s), exit 2 with one line.
        (code, _, err) = CliTests.Run("evaluate", "--model", model, "--data", "builtin:iris", "--one-hot", "species", "--cluster", PathOf("two.json"));
        OneErrorLine(code, err, "no silo reachable");
    }
}
