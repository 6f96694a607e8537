using System.Diagnostics;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 13: under an address-space limit (<c>ulimit -v</c>) the CLI computes or refuses with one line, never a .NET stack
/// trace or exit 134. The built <c>landscape</c> runs in a child shell that sets the limit first.
/// </summary>
public sealed class AddressSpaceLimitTests : IDisposable
{
    /// <summary>The limit of the probe: 4 GiB in ulimit's kB (<c>ulimit -v 4194304</c>).</summary>
    private const long LimitKilobytes = 4L << 20;

    /// <summary>A run of <c>evaluate</c> on iris takes about 2 s here; far more means a hang.</summary>
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromSeconds(60);

    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-rlimit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Evaluate_Under_A_4_GB_Address_Space_Limit_Computes_Without_A_Stack_Trace()
    {
        string model = Path.Combine(_dir, "m.json");
        Assert.Equal(0, CliTests.Run("init", "--data", "builtin:iris", "--one-hot", "species", "--hidden", "16", "--out", model).Code);

        var (code, stdout, stderr) = UnderLimit("evaluate", "--model", model, "--data", "builtin:iris", "--one-hot", "species");

        Assert.True(code == 0, $"exit {code} under ulimit -v {LimitKilobytes}: {stderr}");
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.Contains("loss", stdout, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("NaN", stdout);
    }

    [Fact]
    public void A_Refusal_Under_A_4_GB_Address_Space_Limit_Is_One_Line()
    {
        var (code, _, stderr) = UnderLimit("info", "--model", Path.Combine(_dir, "absent.json"));

        Assert.True(code == 2, $"exit {code}: {stderr}");
        Assert.StartsWith("landscape: error: ", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    /// <summary>Runs the built CLI in <c>bash -c 'ulimit -v …; exec landscape …'</c>; returns its exit code and output.</summary>
    private static (int Code, string Out, string Err) UnderLimit(params string[] args)
    {
        string binary = Path.Combine(AppContext.BaseDirectory, "landscape");
        Assert.True(File.Exists(binary), $"{binary}: the built CLI is not beside the tests");
        var info = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"ulimit -v {LimitKilobytes} && exec \"$0\" \"$@\"");
        info.ArgumentList.Add(binary);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }
        using var child = Process.Start(info)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        if (!child.WaitForExit(ChildTimeout))
        {
            child.Kill(entireProcessTree: true);
            Assert.Fail($"still running after {ChildTimeout.TotalSeconds} s under ulimit -v {LimitKilobytes}");
        }
        return (child.ExitCode, stdout.Result, stderr.Result);
    }
}
