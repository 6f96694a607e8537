using System.Text.Json;
using LossLandscape.Data;

namespace LossLandscape.Tests;

/// <summary>
/// Issue 21's acceptance: a TorchScript CNN trained and saved by PyTorch 1.13 (conv, batch norm, relu, max pool, linear;
/// <c>Fixtures/torchscript/make_fashion.py</c>), on Fashion-MNIST from Debian's package, through the commands a PyHessian or
/// loss-landscape user runs, with <c>--loss cross-entropy</c>: the loss, the gradient's norm, the top eigenvalues and the trace
/// equal PyTorch's float64 numbers on the same 200 images (the script's dense Hessian); the slice, the paths and the report
/// run and write what they say. <c>.ci/run</c> installs the package and sets <see cref="RequireVariable"/>, so there a missing
/// package fails these tests; elsewhere they are skipped with the command that installs it.
/// </summary>
public sealed class FashionMnistTorchScriptTests : IDisposable
{
    /// <summary>Set to 1 (by <c>.ci/run</c>) to make a missing dataset-fashion-mnist package fail these tests instead of skipping them.</summary>
    public const string RequireVariable = "LANDSCAPE_TESTS_REQUIRE_FASHION_MNIST";

    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
    private static readonly string A = Path.Combine(Fixtures, "fashion_a.pt");
    private static readonly string B = Path.Combine(Fixtures, "fashion_b.pt");
    private readonly string _dir = Directory.CreateTempSubdirectory("landscape-fashion-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The data options of every run: the first 200 training images, as the script measured them.</summary>
    private static readonly string[] Data = ["--data", "builtin:fashion-mnist", "--rows", "0:200", "--loss", "cross-entropy"];

    /// <summary>Fails the test where <see cref="RequireVariable"/> demands the package and it is missing; skips it where it is merely missing.</summary>
    internal static void RequirePackage()
    {
        bool installed = Directory.Exists(DatasetLoader.FashionMnistDirectory);
        bool required = Environment.GetEnvironmentVariable(RequireVariable) == "1";
        const string Hint = "apt-get install dataset-fashion-mnist, as .ci/run does";
        Assert.False(!installed && required, $"dataset-fashion-mnist is not installed, and {RequireVariable}=1 requires it; {Hint}");
        Skip.If(!installed, $"dataset-fashion-mnist is not installed; {Hint}, to run this test");
    }

    private static JsonElement Reference(string network)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixtures, "fashion_reference.json")));
        return doc.RootElement.GetProperty(network).Clone();
    }

    private JsonElement RunJson(params string[] args)
    {
        string json = Path.Combine(_dir, $"{args[0]}-{Guid.NewGuid():N}.json");
        var (code, _, err) = CliTests.Run([.. args, .. Data, "--json", json]);
        Assert.True(code == 0, $"landscape {string.Join(' ', args)} exited {code}: {err}");
        Assert.Contains("eval mode", err, StringComparison.Ordinal); // the output states how the module is evaluated
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        return doc.RootElement.Clone();
    }

    private static void Close(double expected, double actual, double relative, string what) =>
        Assert.True(Math.Abs(actual - expected) <= relative * Math.Abs(expected), $"{what}: {actual:R}, PyTorch {expected:R} (relative {Math.Abs(actual - expected) / Math.Abs(expected):E2})");

    [SkippableTheory]
    [InlineData("fashion_a")]
    [InlineData("fashion_b")]
    public void Evaluate_Gives_PyTorchs_Loss_And_Gradient(string network)
    {
        RequirePackage();
        var reference = Reference(network);
        var result = RunJson("evaluate", "--model", Path.Combine(Fixtures, network + ".pt"));
        Assert.Equal(reference.GetProperty("n").GetInt32(), result.GetProperty("n").GetInt32());
        Close(reference.GetProperty("loss").GetDouble(), result.GetProperty("loss").GetDouble(), 1e-12, "cross-entropy");
        Close(reference.GetProperty("gradientNorm").GetDouble(), result.GetProperty("gradientNorm").GetDouble(), 1e-10, "‖∇L‖");
    }

    [SkippableFact]
    public void Lanczos_Gives_PyTorchs_Top_Eigenvalues_Converged()
    {
        RequirePackage();
        var reference = Reference("fashion_a").GetProperty("topEigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var result = RunJson("spectrum", "--model", A, "--method", "lanczos", "--k", "3");
        Assert.Equal("converged", result.GetProperty("status").GetString());
        var found = result.GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < 3; i++)
        {
            Close(reference[i], found[i], 1e-8, $"λ{i + 1}");
        }
    }

    [SkippableFact]
    public void Hutch_Plus_Plus_Covers_PyTorchs_Exact_Trace_Within_Four_Standard_Errors()
    {
        RequirePackage();
        double exact = Reference("fashion_a").GetProperty("trace").GetDouble();
        var result = RunJson("trace", "--model", A);
        double estimate = result.GetProperty("trace").GetDouble();
        double error = result.GetProperty("standardError").GetDouble();
        Assert.True(error > 0 && error < 0.02 * Math.Abs(exact), $"standard error {error}");
        Assert.True(Math.Abs(estimate - exact) <= 4 * error, $"trace {estimate} ± {error}, exact {exact}");
    }

    [SkippableFact]
    public void Slq_Density_Reaches_The_Top_Eigenvalue()
    {
        RequirePackage();
        double top = Reference("fashion_a").GetProperty("topEigenvalues")[0].GetDouble();
        var result = RunJson("spectrum", "--model", A, "--method", "slq", "--probes", "2", "--steps", "40");
        double highest = result.GetProperty("quadrature").EnumerateArray().SelectMany(q => q.GetProperty("nodes").EnumerateArray()).Max(e => e.GetDouble());
        Close(top, highest, 1e-6, "the highest Ritz value"); // 40 Lanczos steps converge the top of the spectrum
    }

    [SkippableFact]
    public void A_Filter_Normalized_Surface_Is_Drawn_Around_The_Loss_At_The_Point()
    {
        RequirePackage();
        string figure = Path.Combine(_dir, "surface.png");
        var result = RunJson("slice", "--model", A, "--dims", "2", "--directions", "filter", "--grid", "5", "--out", figure);
        Assert.True(new FileInfo(figure).Length > 1000);
        double center = result.GetProperty("loss").EnumerateArray().Select(row => row.EnumerateArray().Select(e => e.GetDouble()).ToArray()).ToArray()[2][2];
        Close(Reference("fashion_a").GetProperty("loss").GetDouble(), center, 1e-12, "the surface at its center");
    }

    [SkippableFact]
    public void Linear_Bezier_And_Neb_Paths_Join_Two_Trained_Networks()
    {
        RequirePackage();
        var result = RunJson("connect", "--model", A, "--to", B, "--method", "linear,bezier,neb", "--points", "11", "--budget", "40");
        var methods = result.GetProperty("methods").EnumerateArray().ToArray();
        Assert.Equal(["linear", "bezier", "neb"], methods.Select(m => m.GetProperty("method").GetString()!));
        foreach (var m in methods)
        {
            string method = m.GetProperty("method").GetString()!;
            Close(Reference("fashion_a").GetProperty("loss").GetDouble(), m.GetProperty("lossA").GetDouble(), 1e-12, $"{method} at A");
            Close(Reference("fashion_b").GetProperty("loss").GetDouble(), m.GetProperty("lossB").GetDouble(), 1e-12, $"{method} at B");
            Assert.True(double.IsFinite(m.GetProperty("barrier").GetDouble()) && m.GetProperty("maxLoss").GetDouble() >= m.GetProperty("lossA").GetDouble(), method);
        }
    }

    [SkippableFact]
    public void The_Report_Shows_What_A_PyHessian_User_Expects_And_Leaves_Out_M()
    {
        RequirePackage();
        string path = Path.Combine(_dir, "path.json");
        var (code, _, err) = CliTests.Run(["connect", "--model", A, "--to", B, "--method", "linear", "--points", "11", "--out", path, .. Data]);
        Assert.True(code == 0, err);
        string dir = Path.Combine(_dir, "report");
        (code, _, err) = CliTests.Run(["report", "--model", A, "--out", dir, "--path", path, "--grid", "5", "--k", "2", "--trace-probes", "20", "--slq-steps", "20", "--slq-probes", "2", .. Data]);
        Assert.True(code == 0, $"report exited {code}: {err}");
        string page = File.ReadAllText(Path.Combine(dir, "index.html"));
        foreach (var shown in new[] { "<h2>Top eigenvalues of the Hessian", "‖Hv − λv‖", "<h2>Trace of the Hessian", "(standard error)", "<h2>Spectral density", "<h2>Loss surface", "<h2>Paths between minima" })
        {
            Assert.Contains(shown, page, StringComparison.Ordinal);
        }
        Assert.Contains("‖p‖ → ∞", page, StringComparison.Ordinal);
        Assert.DoesNotContain("<h2>Certificate", page, StringComparison.Ordinal);
        // The path table without the distance from M: no max|H| column, no manifold certification.
        Assert.Contains("<th>method</th><th>max L</th><th>barrier</th><th>length / ‖A − B‖</th>", page, StringComparison.Ordinal);
        Assert.DoesNotContain("max|H|", page, StringComparison.Ordinal);
        Assert.DoesNotContain("certified", page, StringComparison.Ordinal);
    }
}
