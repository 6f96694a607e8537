using System.Diagnostics;

namespace LossLandscape.Tests;

/// <summary>
/// Finds headless Chromium (Debian's chromium package) for the browser test; installs nothing. <c>.ci/run</c> installs the
/// package before the tests, says so on its console, and sets <see cref="RequireVariable"/>: there a missing browser
/// fails the test. Elsewhere the test is skipped, with the reason and how to install it.
/// </summary>
internal static class Chromium
{
    /// <summary>Set to 1 (by <c>.ci/run</c>) to make a missing chromium fail the browser test instead of skipping it.</summary>
    public const string RequireVariable = "LANDSCAPE_TESTS_REQUIRE_CHROMIUM";

    /// <summary>Where Debian's and Ubuntu's packages put the browser.</summary>
    private static readonly string[] Candidates = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

    /// <summary>
    /// What a test does when chromium is <paramref name="installed"/> or not: nothing (both null), fail with a message, or
    /// skip with a reason; it fails only where <paramref name="required"/> (<see cref="RequireVariable"/>).
    /// </summary>
    public static (string? Fail, string? Skip) WhenMissing(bool installed, bool required)
    {
        const string Hint = "install Debian's chromium package (apt-get install chromium), as .ci/run does";
        if (installed)
        {
            return (null, null);
        }
        return required
            ? ($"chromium is not installed, and {RequireVariable}=1 requires it (.ci/run sets it after installing the package); {Hint}", null)
            : (null, $"chromium is not installed; {Hint}, to run this test");
    }

    /// <summary>The path of chromium; otherwise fails or skips the test (<see cref="WhenMissing"/>).</summary>
    public static string Locate(Action<string> say)
    {
        string? found = Candidates.FirstOrDefault(File.Exists);
        var (fail, skip) = WhenMissing(found is not null, Environment.GetEnvironmentVariable(RequireVariable) == "1");
        if (fail is not null)
        {
            Assert.Fail(fail);
        }
        Skip.If(skip is not null, skip);
        say($"using {found}");
        return found!;
    }

    /// <summary>Runs headless chromium; a non-zero exit fails the test.</summary>
    public static string Run(string chromium, string arguments)
    {
        var info = new ProcessStartInfo(chromium, "--headless --no-sandbox --disable-gpu --hide-scrollbars " + arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(180_000), $"{chromium} timed out");
        Assert.True(process.ExitCode == 0, $"{chromium} {arguments} exited {process.ExitCode}: {error.Result}");
        return output.Result;
    }
}
