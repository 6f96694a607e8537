using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 19 §1: an output that exists and is not a regular file (a device, a named pipe, a socket, standard output named
/// as a path) is written in place, never renamed over or replaced; <c>--json -</c> writes the JSON alone to standard
/// output. The kind of each node is read back with coreutils' <c>stat -c %F</c>, independently of the library.
/// </summary>
public sealed class OutputTargetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-targets-").FullName;
    private readonly string _model;

    public OutputTargetTests()
    {
        _model = Path.Combine(_dir, "m.json");
        var (code, _, err) = CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "4", "--out", _model);
        Assert.True(code == 0, err);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>evaluate on iris, writing its JSON to <paramref name="json"/>.</summary>
    private string[] Evaluate(string json) => ["evaluate", "--model", _model, "--data", "builtin:iris", "--one-hot", "species", "--json", json];

    private static string Binary
    {
        get
        {
            string binary = Path.Combine(AppContext.BaseDirectory, "landscape");
            Assert.True(File.Exists(binary), $"{binary}: the built CLI is not beside the tests");
            return binary;
        }
    }

    /// <summary>Runs a program to its end; returns its exit code, stdout and stderr.</summary>
    private static (int Code, string Out, string Err) Exec(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var child = Process.Start(info)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        if (!child.WaitForExit(120_000))
        {
            child.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)}: still running after 120 s");
        }
        return (child.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>What coreutils' stat says <paramref name="path"/> is ("character special file", "fifo", "socket", …).</summary>
    private static string Kind(string path)
    {
        var (code, output, error) = Exec("stat", "-c", "%F", path);
        Assert.True(code == 0, error);
        return output.Trim();
    }

    /// <summary>The evaluate result as JSON must name the model's n and the data's d (a whole document, not a piece).</summary>
    private static void AssertEvaluateJson(string text)
    {
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(35, doc.RootElement.GetProperty("n").GetInt32()); // (4·4+4) + (3·4+3)
        Assert.Equal(150, doc.RootElement.GetProperty("d").GetInt32());
    }

    [SkippableFact]
    public void A_Device_Node_Is_Written_In_Place_And_Stays_A_Device()
    {
        Skip.IfNot(Environment.IsPrivilegedProcess, "mknod needs root; the CI runs as root");
        // The test's own nodes with the numbers of /dev/null (1, 3) and /dev/full (1, 7): never the system's.
        string sink = Path.Combine(_dir, "null");
        string full = Path.Combine(_dir, "full");
        Assert.Equal(0, Exec("mknod", sink, "c", "1", "3").Code);
        Assert.Equal(0, Exec("mknod", full, "c", "1", "7").Code);

        var (code, output, err) = CliTests.Run(Evaluate(sink));
        Assert.True(code == 0, err);
        Assert.Contains("parameters n", output);
        Assert.Equal("character special file", Kind(sink));

        (code, _, err) = CliTests.Run(Evaluate(full));
        Assert.Equal(2, code); // a write to /dev/full fails with ENOSPC: one line, exit 2, not a success
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"landscape: error: {full}: cannot write: ", line);
        Assert.Equal("character special file", Kind(full));
        Assert.Equal(["full", "m.json", "null"], Directory.GetFileSystemEntries(_dir).Select(f => Path.GetFileName(f)!).Order().ToArray());
    }

    [Fact]
    public async Task A_Named_Pipe_Gives_Its_Reader_The_Whole_Json_And_Stays_A_Pipe()
    {
        string fifo = Path.Combine(_dir, "results");
        Assert.Equal(0, Exec("mkfifo", fifo).Code);
        // The reader opens the pipe first (its open waits for the writer) and reads to the writer's close.
        var reader = Task.Run(() => File.ReadAllText(fifo));
        var (code, _, err) = CliTests.Run(Evaluate(fifo));
        Assert.True(code == 0, err);
        AssertEvaluateJson(await reader.WaitAsync(TimeSpan.FromSeconds(60))); // a TimeoutException: the reader got no end of file
        Assert.Equal("fifo", Kind(fifo));
    }

    [Fact]
    public async Task A_Socket_Is_Connected_To_And_Sent_The_Whole_Json()
    {
        string path = Path.Combine(_dir, "results.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var received = Task.Run(() =>
        {
            using var connection = listener.Accept();
            using var stream = new NetworkStream(connection);
            using var text = new StreamReader(stream);
            return text.ReadToEnd();
        });
        var (code, _, err) = CliTests.Run(Evaluate(path));
        Assert.True(code == 0, err);
        AssertEvaluateJson(await received.WaitAsync(TimeSpan.FromSeconds(60))); // a TimeoutException: no end of stream
        Assert.Equal("socket", Kind(path));
    }

    [Fact]
    public void Json_Dash_Puts_The_Json_Alone_On_Stdout_And_The_Table_On_Stderr()
    {
        var (code, output, err) = CliTests.Run(Evaluate("-"));
        Assert.True(code == 0, err);
        AssertEvaluateJson(output); // the whole of stdout is one JSON document
        Assert.Contains("parameters n", err);
        Assert.False(File.Exists(Path.Combine(_dir, "-")), "--json - wrote a file named '-'");
    }

    [Fact]
    public async Task Json_Dash_Through_A_Pipe_Is_Read_By_A_Json_Parser()
    {
        // The built CLI in its own process, its standard output a pipe to this process, parsed as it arrives.
        var info = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in Evaluate("-"))
        {
            info.ArgumentList.Add(a);
        }
        using var child = Process.Start(info)!;
        var stderr = child.StandardError.ReadToEndAsync();
        using var doc = await JsonDocument.ParseAsync(child.StandardOutput.BaseStream);
        await child.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        string error = await stderr;
        Assert.True(child.ExitCode == 0, error);
        Assert.Equal(35, doc.RootElement.GetProperty("n").GetInt32());
        Assert.Contains("parameters n", error);
    }

    [Fact]
    public void Dev_Stdout_Redirected_To_A_File_Keeps_The_Table_Then_The_Json()
    {
        string output = Path.Combine(_dir, "out.txt");
        var (code, _, err) = Exec("bash", ["-c", "out=$1; shift; exec \"$0\" \"$@\" > \"$out\"", Binary, output, .. Evaluate("/dev/stdout")]);
        Assert.True(code == 0, err);
        string text = File.ReadAllText(output);
        int json = text.IndexOf("\n{", StringComparison.Ordinal);
        Assert.True(json > 0, $"no JSON after the table in:\n{text}");
        Assert.Contains("parameters n", text[..json]); // the table is kept, not replaced by the JSON
        AssertEvaluateJson(text[(json + 1)..]);
        Assert.Equal("regular file", Kind(output));
    }

    [Fact]
    public void Dev_Stdout_Through_A_Pipe_Carries_The_Json()
    {
        var (code, output, err) = Exec(Binary, Evaluate("/dev/stdout"));
        Assert.True(code == 0, err);
        int json = output.IndexOf("\n{", StringComparison.Ordinal);
        Assert.True(json > 0, $"no JSON after the table in:\n{output}");
        AssertEvaluateJson(output[(json + 1)..]);
    }
}
