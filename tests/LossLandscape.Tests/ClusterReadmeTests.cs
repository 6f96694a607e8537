using System.Diagnostics;
using System.Globalization;
using LossLandscape.Engine;

namespace LossLandscape.Tests;

/// <summary>
/// README "More than one machine", "On real machines": every line of its shell block runs as written on this machine, the
/// machines being loopback addresses: the Redis host 10.0.0.5 is 127.0.0.1, the workers' hosts 10.0.0.11, .12 and .13 are
/// 127.0.0.2, .3 and .4, and the ports 6379 and 11111 are free ports of this machine. <c>redis-server</c> runs in a folder of
/// the test's own; the workers are processes; the other commands run in-process and exit 0.
/// </summary>
[Collection(WorkerProcessesCollection.Name)]
public sealed class ClusterReadmeTests : IDisposable
{
    private readonly KillableCluster _cluster = new(3, "landscape-readme-cluster-");
    private Process? _redis;

    private static List<string> Lines()
    {
        var readme = File.ReadAllText(SourceTree.Path("README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf("\n## More than one machine\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no section \"More than one machine\"");
        int end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        string section = readme[start..end];
        int block = section.IndexOf("```sh\n", StringComparison.Ordinal);
        Assert.True(block >= 0, "the section has no sh block");
        string body = section[(block + 6)..];
        return [.. body[..body.IndexOf("```", StringComparison.Ordinal)].Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0)];
    }

    [SkippableFact]
    public void The_Commands_Of_On_Real_Machines_Run_As_Written_On_Loopback_Addresses()
    {
        var (fail, skip) = RedisServer.WhenMissing(File.Exists("/usr/bin/redis-server"), Environment.GetEnvironmentVariable(RedisServer.RequireVariable) == "1");
        if (fail is not null)
        {
            Assert.Fail(fail);
        }
        Skip.If(skip is not null, skip);
        TorchRuntime.EnsureInitialized();
        var lines = Lines();
        Assert.All(lines, l => Assert.DoesNotContain('\'', l)); // run without a shell: no quoting to undo
        Assert.Equal("redis-server", lines[0].Split(' ')[0]);
        Assert.Equal(3, lines.Count(l => l.StartsWith("landscape worker ", StringComparison.Ordinal)));
        var hosts = new Dictionary<string, string>
        {
            ["10.0.0.5"] = "127.0.0.1", ["10.0.0.11"] = "127.0.0.2", ["10.0.0.12"] = "127.0.0.3", ["10.0.0.13"] = "127.0.0.4",
            ["6379"] = RedisServer.FreePort().ToString(CultureInfo.InvariantCulture),
            ["11111"] = KillableCluster.FreeBasePort(3).ToString(CultureInfo.InvariantCulture),
        };
        string Here(string word)
        {
            foreach (var (from, to) in hosts)
            {
                word = word.Replace(from, to, StringComparison.Ordinal);
            }
            return word.EndsWith(".json", StringComparison.Ordinal) ? _cluster.PathOf(word) : word;
        }
        foreach (var line in lines)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(Here).ToArray();
            if (words[0] == "redis-server")
            {
                var info = new ProcessStartInfo("/usr/bin/redis-server") { UseShellExecute = false, WorkingDirectory = _cluster.Directory, RedirectStandardOutput = true };
                foreach (var w in words.Skip(1))
                {
                    info.ArgumentList.Add(w);
                }
                _redis = Process.Start(info)!;
                _ = _redis.StandardOutput.ReadToEndAsync();
                WaitForPort(int.Parse(hosts["6379"], CultureInfo.InvariantCulture));
            }
            else if (words[1] == "worker")
            {
                string config = words[Array.IndexOf(words, "--cluster") + 1];
                int index = int.Parse(words[Array.IndexOf(words, "--index") + 1], CultureInfo.InvariantCulture);
                var rest = new List<string>();
                for (int i = 2; i < words.Length; i++)
                {
                    if (words[i] is "--cluster" or "--index")
                    {
                        i++; // StartWorker names these two itself
                        continue;
                    }
                    rest.Add(words[i]);
                }
                _cluster.StartWorker(config, index, [.. rest]);
            }
            else
            {
                Assert.Equal("landscape", words[0]);
                var (code, output, err) = CliTests.Run(words[1..]);
                Assert.True(code == 0, $"`{line}` exited {code}: {err}");
                Assert.False(string.IsNullOrWhiteSpace(output), $"`{line}` printed nothing");
                if (words.Contains("--cluster"))
                {
                    Assert.Contains("loaded on 3 of 3 workers", err, StringComparison.Ordinal);
                }
            }
        }
    }

    private static void WaitForPort(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                client.Connect(System.Net.IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                Thread.Sleep(50);
            }
        }
        Assert.Fail($"redis-server did not listen on port {port} within 30 s");
    }

    /// <summary>Stops Redis and the workers and removes the folder.</summary>
    public void Dispose()
    {
        if (_redis is { HasExited: false })
        {
            _redis.Kill();
            _redis.WaitForExit();
        }
        _redis?.Dispose();
        _cluster.Dispose();
    }
}
