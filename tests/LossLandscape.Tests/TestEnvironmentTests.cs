using System.Text.RegularExpressions;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 19 §9: the test suite installs nothing on the machine it runs on; <c>.ci/run</c> installs what the tests need
/// (Debian's chromium) before they start and says so.
/// </summary>
public sealed partial class TestEnvironmentTests
{
    /// <summary>A package manager named as a program to run: a string literal that is its name or path.</summary>
    [GeneratedRegex(@"""(/usr/(local/)?s?bin/)?(apt-get|apt|dpkg|pip3?|npm|npx)""")]
    private static partial Regex PackageManager();

    [Fact]
    public void No_Test_Runs_A_Package_Manager()
    {
        var sources = Directory.GetFiles(SourceTree.Path("tests"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.EndsWith(nameof(TestEnvironmentTests) + ".cs", StringComparison.Ordinal))
            .ToList();
        Assert.Contains(sources, f => f.EndsWith("Chromium.cs", StringComparison.Ordinal));
        var offenders = sources.SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => !x.line.TrimStart().StartsWith("//", StringComparison.Ordinal) && PackageManager().IsMatch(x.line))
            .Select(x => $"{Path.GetFileName(x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, "tests that run a package manager (install in .ci/run instead):\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void Ci_Run_Installs_Chromium_Before_The_Tests_And_Requires_It()
    {
        string script = File.ReadAllText(SourceTree.Path(".ci", "run"));
        int install = script.IndexOf("apt-get install -y -qq chromium", StringComparison.Ordinal);
        int require = script.IndexOf($"export {Chromium.RequireVariable}=1", StringComparison.Ordinal);
        int tests = script.IndexOf("dotnet test LossLandscape.sln -c Release", StringComparison.Ordinal);
        Assert.True(install >= 0 && require > install && tests > require, ".ci/run must install chromium, then require it, then run the tests");
        Assert.Contains("echo \".ci/run: installing Debian's chromium package", script);
    }

    [Fact]
    public void Ci_Run_Installs_Redis_Server_Before_The_Tests_And_Requires_It()
    {
        // Issue 22: the Redis cluster tests start their own redis-server; CI installs the package and makes its absence a failure.
        string script = File.ReadAllText(SourceTree.Path(".ci", "run"));
        int install = script.IndexOf("apt-get install -y -qq redis-server", StringComparison.Ordinal);
        int require = script.IndexOf($"export {RedisServer.RequireVariable}=1", StringComparison.Ordinal);
        int tests = script.IndexOf("dotnet test LossLandscape.sln -c Release", StringComparison.Ordinal);
        Assert.True(install >= 0 && require > install && tests > require, ".ci/run must install redis-server, then require it, then run the tests");
        Assert.Contains("echo \".ci/run: installing Debian's redis-server package", script);
    }

    [Theory]
    [InlineData(true, false, null, null)]
    [InlineData(true, true, null, null)]
    [InlineData(false, false, null, "redis-server is not installed")]
    [InlineData(false, true, "LANDSCAPE_TESTS_REQUIRE_REDIS", null)]
    public void A_Missing_Redis_Server_Fails_Where_Required_And_Is_Skipped_Elsewhere(bool installed, bool required, string? fails, string? skips)
    {
        var (fail, skip) = RedisServer.WhenMissing(installed, required);
        Assert.Equal(fails is null, fail is null);
        Assert.Equal(skips is null, skip is null);
        if (fails is not null)
        {
            Assert.Contains(fails, fail!, StringComparison.Ordinal);
        }
        if (skips is not null)
        {
            Assert.Contains(skips, skip!, StringComparison.Ordinal);
        }
    }
}
