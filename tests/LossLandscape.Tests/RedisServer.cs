using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace LossLandscape.Tests;

/// <summary>
/// A real Redis server (Debian's <c>redis-server</c>) for the tests of Redis membership, on a free port of 127.0.0.1, in a
/// temporary folder of its own, stopped and removed on <see cref="Dispose"/>. Installs nothing: <c>.ci/run</c> installs the
/// package and sets <see cref="RequireVariable"/>, and there a missing server fails the test; elsewhere it is skipped,
/// saying how to install it.
/// </summary>
internal sealed class RedisServer : IDisposable
{
    /// <summary>Set to 1 (by <c>.ci/run</c>) to make a missing redis-server fail the Redis tests instead of skipping them.</summary>
    public const string RequireVariable = "LANDSCAPE_TESTS_REQUIRE_REDIS";

    /// <summary>How long the server may take to answer PING after its start: 30 s, a loaded 2-core machine and then some.</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Where Debian's package puts the server.</summary>
    private static readonly string[] Candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];

    private readonly string _binary;
    private readonly bool _persistent;
    private Process? _process;

    private RedisServer(string binary, bool persistent)
    {
        _binary = binary;
        _persistent = persistent;
        Directory = System.IO.Directory.CreateTempSubdirectory("landscape-redis-").FullName;
    }

    /// <summary>The server's folder (its log, and with persistence its append-only file).</summary>
    public string Directory { get; }

    /// <summary>The port it listens on, on 127.0.0.1.</summary>
    public int Port { get; private set; }

    /// <summary><c>127.0.0.1:PORT</c>, as <c>cluster init --redis</c> takes it.</summary>
    public string Endpoint => string.Create(CultureInfo.InvariantCulture, $"127.0.0.1:{Port}");

    /// <summary>
    /// What a test does when redis-server is <paramref name="installed"/> or not: nothing (both null), fail with a message, or
    /// skip with a reason; it fails only where <paramref name="required"/> (<see cref="RequireVariable"/>).
    /// </summary>
    public static (string? Fail, string? Skip) WhenMissing(bool installed, bool required)
    {
        const string Hint = "install Debian's redis-server package (apt-get install redis-server), as .ci/run does";
        if (installed)
        {
            return (null, null);
        }
        return required
            ? ($"redis-server is not installed, and {RequireVariable}=1 requires it (.ci/run sets it after installing the package); {Hint}", null)
            : (null, $"redis-server is not installed; {Hint}, to run this test");
    }

    /// <summary>
    /// Starts a server on a free port: without persistence (the default), or with an append-only file fsynced at every write
    /// (<paramref name="persistent"/>), so that <see cref="Restart"/> keeps the membership as a production server's restart would.
    /// Fails or skips the test when redis-server is not installed (<see cref="WhenMissing"/>).
    /// </summary>
    public static RedisServer Start(bool persistent = false)
    {
        string? found = Candidates.FirstOrDefault(File.Exists);
        var (fail, skip) = WhenMissing(found is not null, Environment.GetEnvironmentVariable(RequireVariable) == "1");
        if (fail is not null)
        {
            Assert.Fail(fail);
        }
        Skip.If(skip is not null, skip);
        var server = new RedisServer(found!, persistent);
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                server.Port = FreePort();
                if (server.Launch() || attempt == 4)
                {
                    break; // another process may have taken the port between the look and the start: try another
                }
            }
            Assert.True(server.Answers(), $"redis-server did not answer PING on {server.Endpoint} within {StartTimeout.TotalSeconds} s: {server.Log()}");
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    /// <summary>Stops the server (SIGTERM: it closes its files) and starts it again on the same port and folder.</summary>
    public void Restart()
    {
        Stop();
        Assert.True(Launch(), $"redis-server did not start again on {Endpoint}: {Log()}");
    }

    /// <summary>Stops the server: SIGTERM, and SIGKILL if it has not exited after 10 s.</summary>
    public void Stop()
    {
        if (_process is null)
        {
            return;
        }
        if (!_process.HasExited)
        {
            using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                term.WaitForExit();
            }
            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
                _process.WaitForExit();
            }
        }
        _process.Dispose();
        _process = null;
    }

    /// <summary>Starts the process and waits for it to answer; false if it exited (its port taken) or did not answer in time.</summary>
    private bool Launch()
    {
        var info = new ProcessStartInfo(_binary) { UseShellExecute = false, RedirectStandardOutput = false, RedirectStandardError = false, WorkingDirectory = Directory };
        foreach (var a in new[]
        {
            "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", Directory, "--daemonize", "no",
            "--logfile", Path.Combine(Directory, "redis.log"), "--save", "",
            "--appendonly", _persistent ? "yes" : "no", "--appendfsync", "always",
        })
        {
            info.ArgumentList.Add(a);
        }
        _process = Process.Start(info)!;
        return Answers();
    }

    private bool Answers()
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process is null || _process.HasExited)
            {
                return false;
            }
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, Port);
                var stream = client.GetStream();
                stream.Write("PING\r\n"u8);
                var buffer = new byte[16];
                int read = stream.Read(buffer);
                if (Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal))
                {
                    return true;
                }
            }
            catch (SocketException)
            {
            }
            catch (IOException)
            {
            }
            Thread.Sleep(50);
        }
        return false;
    }

    private string Log()
    {
        string path = Path.Combine(Directory, "redis.log");
        return File.Exists(path) ? File.ReadAllText(path) : "(no log)";
    }

    /// <summary>A port of 127.0.0.1 that nothing listens on now (the system's choice for port 0).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Stops the server and removes its folder.</summary>
    public void Dispose()
    {
        Stop();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
