using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using LossLandscape.Cluster;

namespace LossLandscape.Tests;

/// <summary>
/// <c>landscape worker</c> processes on localhost that a test can kill with SIGKILL and start again, and the <c>landscape</c>
/// drivers run against them; everything still running is killed, and the folder removed, on <see cref="Dispose"/>.
/// </summary>
internal sealed class KillableCluster : IDisposable
{
    /// <summary>How long a worker may take to say "ready": 60 s, a loaded 2-core machine's silo start and then some.</summary>
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);

    private readonly Process?[] _workers;
    private readonly List<Process> _drivers = [];

    /// <summary>Shard s → the worker whose "shard s … loaded" line came last (a killed worker's shards are dropped).</summary>
    private readonly Dictionary<int, int> _hosts = [];

    /// <summary>Room for <paramref name="workers"/> workers, in a fresh temporary folder.</summary>
    public KillableCluster(int workers, string prefix = "landscape-cluster-")
    {
        _workers = new Process?[workers];
        Directory = System.IO.Directory.CreateTempSubdirectory(prefix).FullName;
    }

    /// <summary>The folder the processes run in.</summary>
    public string Directory { get; }

    /// <summary>Environment variables every worker is started with (test hooks), or empty.</summary>
    public Dictionary<string, string> WorkerEnvironment { get; } = [];

    private static string Binary => Path.Combine(AppContext.BaseDirectory, "landscape.dll");

    /// <summary>A path in <see cref="Directory"/>.</summary>
    public string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>Writes <paramref name="config"/> to <paramref name="name"/> in the folder and returns its path.</summary>
    public string WriteConfig(string name, ClusterConfig config)
    {
        string path = PathOf(name);
        File.WriteAllText(path, config.ToJson());
        return path;
    }

    /// <summary>Starts <c>landscape</c> in <paramref name="directory"/> (default the folder) with <paramref name="environment"/> added; a driver is killed on dispose.</summary>
    public Process Start(IReadOnlyDictionary<string, string>? environment, string? directory, params string[] arguments)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory ?? Directory,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        info.ArgumentList.Add(Binary);
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }
        var process = Process.Start(info)!;
        if (arguments.FirstOrDefault() != "worker")
        {
            lock (_drivers)
            {
                _drivers.Add(process);
            }
        }
        return process;
    }

    /// <summary>
    /// Starts worker <paramref name="index"/> of <paramref name="config"/> (with <paramref name="options"/> added, e.g.
    /// <c>--advertise 127.0.0.3</c>) and waits for its "ready" line; then follows its "shard S of N loaded" lines
    /// (<see cref="ShardsOn"/>).
    /// </summary>
    public void StartWorker(string config, int index, params string[] options)
    {
        var worker = Start(WorkerEnvironment, null, ["worker", "--cluster", config, "--index", index.ToString(CultureInfo.InvariantCulture), .. options]);
        lock (_hosts)
        {
            _workers[index] = worker;
        }
        // The worker says "ready" on stderr once its silo has started.
        var ready = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            string prefix = $"landscape worker {index}: shard ";
            string? line;
            while ((line = worker.StandardError.ReadLine()) is not null)
            {
                if (line.Contains("ready", StringComparison.Ordinal))
                {
                    ready.TrySetResult(true);
                }
                else if (line.StartsWith(prefix, StringComparison.Ordinal) && line.Contains(" loaded", StringComparison.Ordinal)
                    && int.TryParse(line.AsSpan(prefix.Length, line.IndexOf(' ', prefix.Length) - prefix.Length), NumberStyles.Integer, CultureInfo.InvariantCulture, out int shard))
                {
                    lock (_hosts)
                    {
                        if (_workers[index] == worker)
                        {
                            _hosts[shard] = index;
                        }
                    }
                }
            }
            ready.TrySetResult(false);
        }) { IsBackground = true }.Start();
        Assert.True(ready.Task.Wait(ReadyTimeout) && ready.Task.Result, $"worker {index} did not start" + (worker.HasExited ? $" (exit {worker.ExitCode})" : ""));
        _ = worker.StandardOutput.ReadToEndAsync();
    }

    /// <summary>The shards worker <paramref name="index"/> loaded last (as far as its stderr has said so far).</summary>
    public int[] ShardsOn(int index)
    {
        lock (_hosts)
        {
            return _hosts.Where(h => h.Value == index).Select(h => h.Key).Order().ToArray();
        }
    }

    /// <summary>Kills worker <paramref name="index"/> with SIGKILL (no shutdown: the silo just vanishes) and waits for it to be gone.</summary>
    public void Kill(int index)
    {
        Process worker;
        lock (_hosts)
        {
            // From here on, what the dead worker's stderr still holds says nothing about where the shards are.
            worker = _workers[index]!;
            _workers[index] = null;
            foreach (int shard in _hosts.Where(h => h.Value == index).Select(h => h.Key).ToArray())
            {
                _hosts.Remove(shard);
            }
        }
        using (var kill = Process.Start("kill", ["-9", worker.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            kill.WaitForExit();
        }
        worker.WaitForExit();
        worker.Dispose();
    }

    /// <summary>2·<paramref name="workers"/> consecutive free ports from a random base (worker i takes base + 2i and base + 2i + 1).</summary>
    public static int FreeBasePort(int workers)
    {
        var random = new Random();
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int basePort = random.Next(30000, 60000);
            var listeners = new List<TcpListener>();
            try
            {
                for (int p = basePort; p < basePort + 2 * workers; p++)
                {
                    var l = new TcpListener(IPAddress.Loopback, p);
                    l.Start();
                    listeners.Add(l);
                }
                return basePort;
            }
            catch (SocketException)
            {
            }
            finally
            {
                listeners.ForEach(l => l.Stop());
            }
        }
        throw new InvalidOperationException($"no {2 * workers} free consecutive ports");
    }

    /// <summary>Kills the drivers and workers still running and removes the folder.</summary>
    public void Dispose()
    {
        foreach (var d in _drivers)
        {
            if (!d.HasExited)
            {
                d.Kill(entireProcessTree: true);
                d.WaitForExit();
            }
            d.Dispose();
        }
        foreach (var w in _workers)
        {
            if (w is not null && !w.HasExited)
            {
                w.Kill();
                w.WaitForExit();
            }
            w?.Dispose();
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// The test classes that start <c>landscape worker</c> processes (three workers and a driver each, on a 2-core machine): they
/// run one class at a time, so that one class's workers do not starve another's drivers past their time limits (a restart
/// test's 90 s ran out while three such classes ran at once at load 20). Other tests still run beside them.
/// </summary>
[CollectionDefinition(Name)]
public sealed class WorkerProcessesCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Worker processes";
}
