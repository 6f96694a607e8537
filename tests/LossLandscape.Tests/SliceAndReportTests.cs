using System.Diagnostics;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using LossLandscape.Reports;
using SkiaSharp;
using static TorchSharp.torch;

namespace LossLandscape.Tests;

public class SliceAndReportTests
{
    private static (Dataset Data, NetworkPoint Point) SmallPointOfM()
    {
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 10 == 0));
        var (point, _) = PaperVerification.TrainedPoint(data, 24, seed: 2);
        return (data, point);
    }

    [Fact]
    public void Tangent_Slice_Is_Flat_And_Normal_Slice_Is_Curved()
    {
        var (data, point) = SmallPointOfM();
        using var model = point.ToModel();
        var map = new ResidualMap(model, data);
        var tangent = LossSlice.Compute(map, new SliceOptions([SliceDirection.Tangent], Grid: 11, Range: 0.1));
        var normal = LossSlice.Compute(map, new SliceOptions([SliceDirection.Normal], Grid: 11, Range: 0.1));
        double tMax = tangent.Loss.Cast<double>().Max(), nMax = normal.Loss.Cast<double>().Max();
        // Along the tangent H = O(α²) so L = O(α⁴); along the normal L ≈ α²|Jν|².
        Assert.True(tMax < 1e-2 * nMax, $"tangent {tMax:e2} vs normal {nMax:e2}");
        // Normal: a parabola: L(α)/α² is nearly constant over the small range.
        double inner = normal.Loss[6, 0] / (normal.Alphas[6] * normal.Alphas[6]);
        double outer = normal.Loss[10, 0] / (normal.Alphas[10] * normal.Alphas[10]);
        Assert.InRange(outer / inner, 0.8, 1.25);
        Assert.Equal(map.Loss(), tangent.CenterLoss, 1e-20);
    }

    [Fact]
    public void Filter_Normalization_Matches_Each_Unit_And_Normalizes_Biases_Once()
    {
        TorchRuntime.EnsureInitialized();
        var mlp = new Mlp(3, [new HiddenLayer(4, new Models.Activations.SmooLU())], 2);
        var p = mlp.InitialParameters(1).Select((v, i) => v + 0.1 * (i % 3)).ToArray();
        using var model = new NetworkModel(mlp, p);
        using var scope = NewDisposeScope();
        var theta = tensor(p);
        var d = LossSlice.FilterNormalize(model, randn(mlp.ParameterCount), theta, ignoreBias: false);
        foreach (var layer in mlp.Layers)
        {
            for (int o = 0; o < layer.Out; o++)
            {
                double Norm(Tensor v) => Math.Sqrt(Mlp.Weight(v, layer)[o].pow(2).sum().item<double>() + Math.Pow(Mlp.Bias(v, layer)[o].item<double>(), 2));
                Assert.Equal(Norm(theta), Norm(d), 1e-12);
            }
        }
        var ignored = LossSlice.FilterNormalize(model, randn(mlp.ParameterCount), theta, ignoreBias: true);
        Assert.All(mlp.Layers, layer => Assert.Equal(0.0, Mlp.Bias(ignored, layer).abs().max().item<double>()));
    }

    [Fact]
    public void Plots_Render_Svg_With_A_ViewBox_And_Png_And_Refuse_Other_Formats()
    {
        var plot = Plots.Spectrum([3.0, 1.0, 1e-14, -1e-15], 1e-12, 2, "spectrum");
        var svg = Plots.Svg(plot);
        Assert.StartsWith("<svg viewBox=\"0 0 720 420\"", svg);
        Assert.Contains("spectrum", svg);
        var dir = Directory.CreateTempSubdirectory("landscape-plot-").FullName;
        try
        {
            var png = Path.Combine(dir, "s.png");
            Plots.Save(plot, png);
            using var bitmap = SKBitmap.Decode(png);
            Assert.Equal(720, bitmap.Width);
            Assert.True(DistinctColours(bitmap) > 3);
            Assert.Throws<ArgumentException>(() => Plots.Save(plot, Path.Combine(dir, "s.jpg")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Report_Page_Is_Self_Contained()
    {
        var (data, point) = SmallPointOfM();
        using var model = point.ToModel();
        var report = new HtmlReport("test report");
        LandscapeReport.Build(report, new ResidualMap(model, data), new ReportOptions(SliceGrid: 9, WalkSteps: 2));
        var html = report.Render();
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("src=\"http", html);
        Assert.DoesNotContain("href=\"http", html);
        Assert.Contains("<h2>Certificate</h2>", html);
        Assert.Contains("<h2>Spectrum</h2>", html);
        Assert.Contains("<h2>Flat and curved directions of M</h2>", html);
        Assert.True(html.Split("<svg").Length - 1 >= 5);
    }

    internal static int DistinctColours(SKBitmap bitmap)
    {
        var seen = new HashSet<uint>();
        for (int y = 0; y < bitmap.Height; y += 3)
        {
            for (int x = 0; x < bitmap.Width; x += 3)
            {
                seen.Add((uint)bitmap.GetPixel(x, y));
            }
        }
        return seen.Count;
    }
}

/// <summary>
/// The report page as a person sees it: rendered by headless Chromium (Debian's chromium package; the
/// fixture installs it with apt-get when it is missing and the tests run as root), screenshot not blank,
/// and the expected headings in the rendered DOM.
/// </summary>
public sealed class RenderedReportTests
{
    [Fact]
    public void Verify_Report_Renders_In_Headless_Chromium()
    {
        string chromium = Chromium.Locate();
        var dir = Directory.CreateTempSubdirectory("landscape-report-").FullName;
        try
        {
            var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 10 == 0));
            var (p, _) = PaperVerification.TrainedPoint(data, 24, seed: 2);
            using var model = p.ToModel();
            var report = new HtmlReport("LossLandscape report");
            report.Heading("Claims").Table(["claim", "result"], [["a check", "PASS"]]);
            LandscapeReport.Build(report, new ResidualMap(model, data), new ReportOptions(SliceGrid: 15, WalkSteps: 3));
            var page = report.Save(dir);
            var shot = Path.Combine(dir, "shot.png");
            Chromium.Run(chromium, $"--screenshot={shot} --window-size=1366,900 file://{page}");
            using var bitmap = SKBitmap.Decode(shot);
            Assert.Equal(1366, bitmap.Width);
            Assert.True(SliceAndReportTests.DistinctColours(bitmap) > 50, "the screenshot is (nearly) blank");
            var dom = Chromium.Run(chromium, $"--dump-dom file://{page}");
            foreach (var heading in new[] { "Claims", "Certificate", "Spectrum", "Flat and curved directions of M" })
            {
                Assert.Contains($"<h2>{heading}</h2>", dom);
            }
            Assert.Contains("<svg", dom);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>Finds (or installs) headless Chromium and runs it.</summary>
internal static class Chromium
{
    private static readonly object Gate = new();

    public static string Locate()
    {
        lock (Gate)
        {
            foreach (var candidate in new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser" })
            {
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
            // Test set-up: install Debian's chromium package (needs root and the package mirror).
            Exec("apt-get", "update -qq");
            Exec("apt-get", "install -y -qq chromium");
            Assert.True(File.Exists("/usr/bin/chromium"), "chromium is not installed and apt-get could not install it");
            return "/usr/bin/chromium";
        }
    }

    public static string Run(string chromium, string arguments) =>
        Exec(chromium, "--headless --no-sandbox --disable-gpu --hide-scrollbars " + arguments);

    private static string Exec(string file, string arguments)
    {
        var info = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(180_000), $"{file} timed out");
        Assert.True(process.ExitCode == 0, $"{file} {arguments} exited {process.ExitCode}: {error.Result}");
        return output.Result;
    }
}
