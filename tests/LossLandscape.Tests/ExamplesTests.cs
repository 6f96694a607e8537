using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LossLandscape.Tests;

/// <summary>
/// The console programs under <c>examples/</c>, run as a user runs them (<c>dotnet OwnModule.dll</c>): each exits 0 and
/// prints what it promises; and the README's "Use from C#" program is the start of the OwnModule example, so it compiles.
/// </summary>
public sealed partial class ExamplesTests
{
    /// <summary>
    /// The most an example may take. Each runs in a few seconds on an idle machine; the suite runs tests in parallel on
    /// as few as two cores, so allow a hundredfold.
    /// </summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// A seeded stochastic estimate is within this many of its own standard errors of the exact value: a 4σ band, which a
    /// correct estimator leaves with probability below 1e−4 (Chebyshev allows 1/16; the samples are nearly Gaussian).
    /// </summary>
    private const double StandardErrors = 4;

    [Fact]
    public void OwnModule_Prints_Loss_Certificate_TopK_Slq_And_Trace_For_A_TorchSharp_Module()
    {
        var output = Run("OwnModule");

        Assert.True(Number(output, @"loss L = (\S+)") > 0);
        // 4 → 16 → 3 on iris: n = 131 parameters against ℓd = 450 constraints, so J (450 × 131) has full column rank.
        var sizes = Match(output, @"n = (\d+), d = (\d+), ℓ = (\d+)");
        int n = Int(sizes, 1), constraints = Int(sizes, 2) * Int(sizes, 3);
        Assert.Equal((131, 450), (n, constraints));
        Assert.Contains($"rank J = {n} of ℓd = {constraints}; on M: False", output);
        Assert.Contains("dim ker J = n − rank J = 0; regular point: False", output);

        var top = Match(output, @"top-5 eigenvalues of ∇²L: (.+) \((\w+)\)");
        var eigenvalues = top.Groups[1].Value.Split(", ").Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(5, eigenvalues.Length);
        Assert.Equal(eigenvalues.OrderByDescending(v => v), eigenvalues);
        Assert.Equal("Converged", top.Groups[2].Value);

        double exact = Number(output, @"trace \(exact\) = (\S+) from 131 products");
        var hutch = Match(output, @"trace \(Hutch\+\+\) = (\S+) ± (\S+) from (\d+) products");
        Assert.Equal(99, Int(hutch, 3));
        Assert.InRange(Value(hutch, 1), exact - StandardErrors * Value(hutch, 2), exact + StandardErrors * Value(hutch, 2));

        // SLQ: the weights of each quadrature rule sum to 1 (tr(H⁰)/n = 1), and n·tr(H)/n estimates the trace.
        Assert.Equal(1.0, Number(output, @"SLQ tr\(H\^0\)/n = (\S+)"), Tolerances.ExactAgreement);
        var first = Match(output, @"SLQ tr\(H\^1\)/n = (\S+) ± (\S+)");
        Assert.InRange(n * Value(first, 1), exact - StandardErrors * n * Value(first, 2), exact + StandardErrors * n * Value(first, 2));
    }

    [Fact]
    public void TrainAndWalk_Trains_To_M_Certifies_Rank_L_d_And_Walks_On_M()
    {
        var output = Run("TrainAndWalk");

        var sizes = Match(output, @"n = (\d+), ℓd = (\d+)");
        int n = Int(sizes, 1), constraints = Int(sizes, 2);
        Assert.True(n > constraints, output);
        Assert.Contains("training: Converged", output);
        // Theorem 2.1 / 4.1 and Proposition 2.3 at the trained point: on M, rank J = ℓd, dim M = n − ℓd, and ∇²L has
        // ℓd positive and n − ℓd zero eigenvalues.
        Assert.Contains("on M: yes", output);
        Assert.Contains($"rank J = {constraints}, ℓd = {constraints}, dim M = n − rank J = {n - constraints}", output);
        Assert.Contains($"inertia of ∇²L: {constraints} positive, {n - constraints} zero, 0 negative (gram; decided)", output);
        // The walk: eleven records (the start and ten steps), all at full rank, ending away from the start while on M.
        Assert.Equal(11, WalkStep().Matches(output).Count);
        Assert.All(WalkStep().Matches(output), m => Assert.Equal(constraints, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));
        Assert.Contains("walk: Converged", output);
        Assert.Contains("stayed on M: yes", output);
        Assert.True(Number(output, @"travelled (\S+) from the trained point") > 0, output);
    }

    [Fact]
    public void OwnTorchScript_Gives_PyTorchs_Cross_Entropy_For_A_Module_Saved_By_PyTorch()
    {
        // The TorchScript fixture (conv, batch norm, pools, linear; saved by PyTorch 1.13) on its 16 rows, as a user runs the example.
        string fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
        var output = Run("OwnTorchScript", Path.Combine(fixtures, "cnn_traced.pt"), Path.Combine(fixtures, "rows.npz"), "0:16");
        Assert.Contains("n = 340, d = 16, ℓ = 10", output);
        using var reference = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(fixtures, "reference.json")));
        double pytorch = reference.RootElement.GetProperty("crossEntropy").GetDouble();
        Assert.Equal(pytorch, Number(output, @"loss L = (\S+)"), 1e-12 * pytorch);
        Assert.Matches(@"top-3 eigenvalues of ∇²L: \S+, \S+, \S+ \(Converged\)", output);
        Assert.Matches(@"trace \(Hutch\+\+\) = \S+ ± \S+ from 99 products", output);
    }

    [Fact]
    public void Readme_Use_From_CSharp_Program_Is_The_Start_Of_The_OwnModule_Example()
    {
        var readme = File.ReadAllText(SourceTree.Path("README.md"));
        int section = readme.IndexOf("## Use from C#", StringComparison.Ordinal);
        Assert.True(section >= 0, "README.md has no section \"Use from C#\"");
        int start = readme.IndexOf("```csharp\n", section, StringComparison.Ordinal);
        Assert.True(start >= 0, "the section \"Use from C#\" has no ```csharp block");
        start += "```csharp\n".Length;
        var snippet = Lines(readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)]);
        var program = Lines(File.ReadAllText(SourceTree.Path("examples", "OwnModule", "Program.cs")));
        Assert.InRange(snippet.Count, 8, 16); // "the shortest working program": about a dozen lines

        // Every line of the README's program appears in the example, in the same order (the example adds lines between).
        int at = 0;
        foreach (var line in snippet)
        {
            int found = program.FindIndex(at, l => l == line);
            Assert.True(found >= 0, $"README line not in examples/OwnModule/Program.cs (after line {at}): {line}");
            at = found + 1;
        }
    }

    /// <summary>Runs the built example; asserts exit code 0 and an empty stderr; returns stdout.</summary>
    private static string Run(string name, params string[] arguments)
    {
        string dll = SourceTree.Path("examples", name, "bin", SourceTree.Configuration, SourceTree.TargetFramework, name + ".dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first (dotnet build LossLandscape.sln -c {SourceTree.Configuration})");
        var start = new ProcessStartInfo(DotnetHost(), [dll, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName} {dll}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{name} did not finish within {Timeout.TotalMinutes} minutes");
        }
        process.WaitForExit(); // drains the redirected streams
        string output = stdout.Result, errors = stderr.Result;
        Assert.True(process.ExitCode == 0, $"{name} exited with {process.ExitCode}:\n{output}\n{errors}");
        Assert.True(errors.Length == 0, $"{name} wrote to stderr:\n{errors}");
        return output;
    }

    /// <summary>The dotnet host running the tests (the SDK sets DOTNET_HOST_PATH), else the one on the PATH.</summary>
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath!
        : "dotnet";

    private static List<string> Lines(string text) =>
        text.ReplaceLineEndings("\n").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();

    private static Match Match(string output, string pattern)
    {
        var m = Regex.Match(output, pattern);
        Assert.True(m.Success, $"no line matches /{pattern}/ in:\n{output}");
        return m;
    }

    private static double Number(string output, string pattern) => Value(Match(output, pattern), 1);

    private static double Value(Match m, int group) => double.Parse(m.Groups[group].Value, NumberStyles.Float, CultureInfo.InvariantCulture);

    private static int Int(Match m, int group) => int.Parse(m.Groups[group].Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"walk step +\d+: max\|H\| = \S+, ‖p − p₀‖ = \S+, rank J = (\d+)")]
    private static partial Regex WalkStep();
}
