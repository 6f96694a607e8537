using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using LossLandscape.Data;
using LossLandscape.Engine;
using LossLandscape.Geometry;
using LossLandscape.Models;
using LossLandscape.Paths;
using LossLandscape.Problem;
using LossLandscape.Reports;
using SkiaSharp;
using Xunit.Abstractions;
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
        Assert.True(tMax < Tolerances.TangentFlatness * nMax, $"tangent {tMax:e2} vs normal {nMax:e2}");
        // Normal: a parabola: L(α)/α² is nearly constant over the small range.
        double inner = normal.Loss[6, 0] / (normal.Alphas[6] * normal.Alphas[6]);
        double outer = normal.Loss[10, 0] / (normal.Alphas[10] * normal.Alphas[10]);
        Assert.InRange(outer / inner, Tolerances.ParabolaRatioLow, Tolerances.ParabolaRatioHigh);
        Assert.Equal(map.Loss(), tangent.CenterLoss, Tolerances.CenterLoss);
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
                Assert.Equal(Norm(theta), Norm(d), Tolerances.ExactAgreement);
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

    [Theory]
    [InlineData("cross-entropy", "under cross-entropy that set is empty")]
    [InlineData("mse", "the mean squared error is that sum divided by dℓ")]
    public void Report_Plan_Leaves_Out_The_Sections_About_M_For_A_Loss_That_Is_Not_A_Residual_Sum(string loss, string reason)
    {
        var plan = LandscapeReport.Plan(LossFunction.Parse(loss));
        Assert.DoesNotContain(plan.Sections, ReportPlan.IsAboutManifold);
        foreach (var section in new[] { ReportSection.Certificate, ReportSection.ManifoldSpectrum, ReportSection.JacobianSingularValues, ReportSection.ManifoldSlice, ReportSection.ManifoldWalk })
        {
            Assert.False(plan.Includes(section), $"{section} is about M");
        }
        Assert.Equal(
            [ReportSection.LossAndGradient, ReportSection.TopEigenvalues, ReportSection.Trace, ReportSection.Density, ReportSection.FilterSurface, ReportSection.TrainingHistory],
            plan.Sections);
        // One sentence, naming what is left out and why.
        var why = Assert.IsType<string>(plan.LeftOut);
        Assert.StartsWith("The certificate", why, StringComparison.Ordinal);
        Assert.Contains(reason, why, StringComparison.Ordinal);
        Assert.EndsWith(".", why, StringComparison.Ordinal);
        Assert.DoesNotContain(". ", why, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2.0)]
    [InlineData(3.0)]
    public void Report_Plan_Of_The_Squared_Loss_Is_The_Report_About_M(double exponent)
    {
        var plan = LandscapeReport.Plan(LossFunction.Squared(exponent));
        Assert.Null(plan.LeftOut);
        Assert.Equal(
        [
            ReportSection.Certificate, ReportSection.ManifoldSpectrum, ReportSection.Density, ReportSection.JacobianSingularValues,
            ReportSection.ManifoldSlice, ReportSection.ManifoldWalk, ReportSection.TrainingHistory,
        ], plan.Sections);
    }

    [Fact]
    public void Cross_Entropy_Report_Of_A_Cnn_On_Digit_Images_Has_The_Curvature_Sections_And_Says_Why_M_Is_Left_Out()
    {
        var dir = Directory.CreateTempSubdirectory("landscape-report-ce-").FullName;
        try
        {
            var html = CrossEntropyCnnReport(dir);
            var text = System.Net.WebUtility.HtmlDecode(html);
            // The sections a PyHessian / loss-landscape user expects, on one page.
            foreach (var heading in new[] { "Loss and gradient", "Top eigenvalues of the Hessian", "Trace of the Hessian", "Spectral density", "Loss surface" })
            {
                Assert.Contains($"<h2>{heading}</h2>", text, StringComparison.Ordinal);
            }
            Assert.Contains("<tr><td>L</td><td>", text, StringComparison.Ordinal);
            Assert.Contains("<tr><td>‖∇L‖₂</td><td>", text, StringComparison.Ordinal);
            Assert.Contains("<th>i</th><th>λ</th><th>‖Hv − λv‖</th><th>converged</th>", text, StringComparison.Ordinal);
            Assert.Contains("Stochastic Lanczos quadrature, 2 probes × 20 steps", text, StringComparison.Ordinal);
            Assert.Contains("Loss along two filter-normalized directions", text, StringComparison.Ordinal);
            Assert.Contains("on a 5 × 5 grid", text, StringComparison.Ordinal);
            Assert.Equal(2, html.Split("<svg").Length - 1);
            // Nothing about M, and the one sentence saying why.
            Assert.DoesNotContain("<h2>Certificate</h2>", text, StringComparison.Ordinal);
            Assert.DoesNotContain("<h2>Spectrum</h2>", text, StringComparison.Ordinal);
            Assert.DoesNotContain("<h2>Flat and curved directions of M</h2>", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Singular values of J", text, StringComparison.Ordinal);
            Assert.Contains($"<p>{LandscapeReport.Plan(LossFunction.CrossEntropy).LeftOut}</p>", text, StringComparison.Ordinal);

            // The eigenvalues and the trace are spectrum's and trace's: the same library calls, the same seed.
            var top = Regex.Matches(text, @"<tr><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td><td>(yes|NO)</td></tr>");
            Assert.Equal(3, top.Count);
            var (code, _, err) = CliTests.Run(["spectrum", .. CrossEntropyCnnData(dir), "--method", "lanczos", "--k", "3", "--json", Path.Combine(dir, "s.json")]);
            Assert.True(code == 0, err);
            using (var spectrum = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "s.json"))))
            {
                var values = spectrum.RootElement.GetProperty("eigenvalues").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var residuals = spectrum.RootElement.GetProperty("residuals").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                for (int i = 0; i < 3; i++)
                {
                    Assert.StartsWith(values[i].ToString("G6", CultureInfo.InvariantCulture), top[i].Groups[2].Value, StringComparison.Ordinal);
                    Assert.Equal(residuals[i].ToString("G3", CultureInfo.InvariantCulture), top[i].Groups[3].Value);
                }
            }
            (code, _, err) = CliTests.Run(["trace", .. CrossEntropyCnnData(dir), "--probes", "9", "--json", Path.Combine(dir, "t.json")]);
            Assert.True(code == 0, err);
            using (var trace = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "t.json"))))
            {
                string expected = $"<tr><td>tr ∇²L</td><td>{trace.RootElement.GetProperty("trace").GetDouble().ToString("G6", CultureInfo.InvariantCulture)} ± " +
                    $"{trace.RootElement.GetProperty("standardError").GetDouble().ToString("G3", CultureInfo.InvariantCulture)} (standard error)</td></tr>";
                Assert.Contains(expected, text, StringComparison.Ordinal);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>
    /// The model and data options of a small CNN (conv:4:3, relu, pool:2, flatten, linear; n = 410) made by <c>init --arch</c> in
    /// <paramref name="dir"/>, on the first 40 rows of builtin:digits viewed as 1 × 8 × 8 images with one-hot labels, under cross-entropy.
    /// </summary>
    internal static string[] CrossEntropyCnnData(string dir) =>
        ["--model", Path.Combine(dir, "cnn.json"), "--data", "builtin:digits", "--input-shape", "1,8,8", "--rows", "0:40", "--one-hot", "digit", "--loss", "cross-entropy"];

    /// <summary>
    /// Makes the CNN of <see cref="CrossEntropyCnnData"/> and its cross-entropy report in <paramref name="dir"/>/report, with small
    /// budgets (k = 3, 9 products for the trace, SLQ 2 probes × 20 steps, a 5 × 5 surface); returns the page.
    /// </summary>
    internal static string CrossEntropyCnnReport(string dir)
    {
        var (code, output, err) = CliTests.Run("init", "--data", "builtin:digits", "--input-shape", "1,8,8", "--rows", "0:40", "--one-hot", "digit",
            "--arch", "conv:4:3,relu,pool:2,flatten,linear", "--seed", "1", "--out", Path.Combine(dir, "cnn.json"));
        Assert.True(code == 0, output + err);
        (code, output, err) = CliTests.Run(["report", .. CrossEntropyCnnData(dir), "--grid", "5", "--k", "3", "--trace-probes", "9", "--slq-steps", "20", "--slq-probes", "2",
            "--out", Path.Combine(dir, "report")]);
        Assert.True(code == 0, output + err);
        return File.ReadAllText(Path.Combine(dir, "report", HtmlReport.PageName));
    }

    /// <summary>A model at its initialization: L &gt; 0, so not a point of M.</summary>
    private static (Dataset Data, NetworkPoint Point) FreshPointOffM()
    {
        TorchRuntime.EnsureInitialized();
        var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 10 == 0));
        var mlp = new Mlp(data.InputDim, [new HiddenLayer(6, new Models.Activations.SmooLU())], data.OutputDim);
        return (data, new NetworkPoint(mlp, mlp.InitialParameters(1)));
    }

    [Fact]
    public void Report_On_M_Says_Point_Of_M_And_Report_Off_M_Says_It_Is_Not_On_M()
    {
        var (onData, onPoint) = SmallPointOfM();
        using var onModel = onPoint.ToModel();
        var onReport = new HtmlReport("on M");
        Assert.True(LandscapeReport.Build(onReport, new ResidualMap(onModel, onData), new ReportOptions(SliceGrid: 5, WalkSteps: 0)).OnManifold);
        Assert.Contains("at a point of M", onReport.Render());
        Assert.Contains("on M</td><td>yes (max|H| = ", onReport.Render());

        var (offData, offPoint) = FreshPointOffM();
        using var offModel = offPoint.ToModel();
        var offReport = new HtmlReport("off M");
        var cert = LandscapeReport.Build(offReport, new ResidualMap(offModel, offData), new ReportOptions(SliceGrid: 5, WalkSteps: 2));
        Assert.False(cert.OnManifold);
        var html = offReport.Render();
        Assert.DoesNotContain("point of M", html);
        Assert.Contains("This point is not on M", html);
        Assert.Contains(System.Net.WebUtility.HtmlEncode($"no (max|H| = {CertificateText.Number(cert.MaxAbsResidual)} > tolerance {CertificateText.Number(cert.OnManifoldTolerance)})"), html);
        // The slice against M's tangent and normal and the walk on M exist only on M.
        Assert.DoesNotContain("<h2>Flat and curved directions of M</h2>", html);
    }

    [Fact]
    public void Walk_Plot_Labels_Both_Y_Axes_Even_When_MaxH_Spans_Less_Than_A_Decade()
    {
        // max|H| held at the retraction tolerance: all values inside one decade, where decade-only labels showed none.
        var steps = Enumerable.Range(0, 11).Select(k => new WalkStep(k, 0, 3e-13 + 1e-14 * k, 12, 0.1 * k, 0.09 * k, 1e-3, 2)).ToArray();
        var plot = Plots.Walk(steps, "walk");
        var svg = Plots.Svg(plot);
        var data = plot.RenderManager.LastRender.DataRect;
        // The SVG's text elements, each placed by translate(x y): left of the data area is the left axis, right of it the right one.
        var texts = System.Text.RegularExpressions.Regex.Matches(svg, @"<text transform=""translate\(([-\d.]+) [-\d.]+\)""[^>]*>\s*(.*?)\s*</text>", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(m => (X: double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Text: System.Net.WebUtility.HtmlDecode(m.Groups[2].Value)))
            .ToArray();
        foreach (var (axis, side) in new (ScottPlot.IYAxis, Func<double, bool>)[] { (plot.Axes.Left, x => x < data.Left), (plot.Axes.Right, x => x > data.Right) })
        {
            var labels = VisibleLabels(plot, axis);
            Assert.True(labels.Length >= 2, $"{axis.Edge} axis: {labels.Length} tick labels");
            Assert.All(labels, t => Assert.Contains(texts, text => text.Text == t.Label && side(text.X)));
        }
    }

    [Fact]
    public void Loss_History_Tick_Labels_Do_Not_Overlap()
    {
        // Gauss–Newton from 1e2 down to 1e−30: 32 decades, which labelled 20 ticks in 300 px.
        var losses = Enumerable.Range(0, 60).Select(k => Math.Pow(10, 2 - 32.0 * k / 59)).ToArray();
        AssertLabelsApart(Plots.LossHistory(losses, "loss"));
        // The spectrum's symmetric log axis: 0 and ±τ sat 0.3 units apart, their labels on top of each other.
        AssertLabelsApart(Plots.Spectrum([5.0, 4.0, 3.0, 2.0, 1e-14, 0, -1e-15], 1e-12, 4, "spectrum"));
        // Off M the zero tolerance can be the size of the eigenvalues themselves (all |λ| < 10τ): still labelled.
        AssertLabelsApart(Plots.Spectrum([9e4, 3e4, 1e3, 0, -2e4], 2.757e4, 450, "spectrum off M"));
    }

    /// <summary>The left axis has 2 to <see cref="Plots.MaxLogLabels"/> labels, each at least two label heights from the next.</summary>
    private static void AssertLabelsApart(ScottPlot.Plot plot)
    {
        Plots.Svg(plot);
        var labels = VisibleLabels(plot, plot.Axes.Left);
        Assert.InRange(labels.Length, 2, Plots.MaxLogLabels);
        var render = plot.RenderManager.LastRender;
        double pixelsPerUnit = render.DataRect.Height / plot.Axes.Left.Range.Span;
        double fontHeight = plot.Axes.Left.TickLabelStyle.FontSize;
        var positions = labels.Select(t => t.Position).Order().ToArray();
        for (int k = 1; k < positions.Length; k++)
        {
            double gap = (positions[k] - positions[k - 1]) * pixelsPerUnit;
            Assert.True(gap >= 2 * fontHeight, $"labels at {positions[k - 1]:G3} and {positions[k]:G3} are {gap:0.0} px apart, font {fontHeight} px");
        }
    }

    [Fact]
    public void Legends_Sit_In_A_Panel_Outside_The_Data_Area()
    {
        var steps = Enumerable.Range(0, 5).Select(k => new WalkStep(k, 0, 1e-12, 12, 0.1 * k, 0.1 * k, 0, 1)).ToArray();
        var plots = new[]
        {
            Plots.Spectrum([5.0, 4.0, 3.0, 2.0, 1e-14, 0, -1e-15], 1e-12, 4, "spectrum"),
            Plots.SingularValues([3.0, 2.0, 1.0, 1e-15], 1e-12, 3, "sigma"),
            Plots.Walk(steps, "walk"),
        };
        foreach (var plot in plots)
        {
            Plots.Svg(plot);
            // No legend inside the data rectangle; one legend panel, on the bottom edge, with room of its own.
            Assert.False(plot.Legend.IsVisible);
            var layout = plot.RenderManager.LastRender.Layout;
            var panel = Assert.Single(plot.Axes.GetPanels().OfType<ScottPlot.Panels.LegendPanel>());
            Assert.Equal(ScottPlot.Edge.Bottom, panel.Edge);
            Assert.True(layout.PanelSizes[panel] > 0);
            Assert.True(layout.PanelOffsets[panel] >= layout.PanelSizes[plot.Axes.Bottom], "the legend panel overlaps the x axis");
        }
    }

    [Fact]
    public void Every_Plot_Axis_Spans_Its_Data()
    {
        // The report's spectrum off M on the σ(J) route: 2 410 values and ℓd = 17 970; the ℓd line ran the x axis to 18 869.
        var values = Enumerable.Range(0, 2410).Select(i => 100.0 / (i + 1) - 0.01).ToArray();
        var spectrum = Plots.Spectrum(values, 1e-3, 17970, "spectrum");
        AssertSpans(spectrum, spectrum.Axes.Bottom, 1, 2410);
        var onM = Plots.Spectrum(values, 1e-3, 1000, "spectrum with its l·d line");
        AssertSpans(onM, onM.Axes.Bottom, 1, 2410);
        var sigma = Plots.SingularValues([3.0, 2.0, 1.0, 1e-15], 1e-12, 3, "sigma");
        AssertSpans(sigma, sigma.Axes.Bottom, 1, 4);
        var density = Plots.Density([-2.0, 0.0, 5.0], [0.1, 0.5, 0.2], "density");
        AssertSpans(density, density.Axes.Bottom, -2, 5);
        var history = Plots.LossHistory([1.0, 0.5, 0.1, 0.01], "loss");
        AssertSpans(history, history.Axes.Bottom, 0, 3);
        // L evaluated every K = 4 steps and after the last (train --loss-every): the x axis is the step, not the index.
        var everyFour = Plots.LossHistory([1.0, 0.5, 0.1, 0.05], "loss every 4 steps", [0, 4, 8, 10]);
        AssertSpans(everyFour, everyFour.Axes.Bottom, 0, 10);
        var steps = Enumerable.Range(0, 5).Select(k => new WalkStep(k, 0, 1e-12, 12, 0.1 * k, 0.3 * k, 0, 1)).ToArray();
        var walk = Plots.Walk(steps, "walk");
        AssertSpans(walk, walk.Axes.Bottom, 0, 4);
        AssertSpans(walk, walk.Axes.Right, 0, 1.2);
        double[] alphas = [-1, 0, 1];
        var one = Plots.Slice(new SliceResult([SliceDirection.Random], alphas, [], new double[,] { { 3 }, { 1 }, { 2 } }, [1], 1), "1D");
        AssertSpans(one, one.Axes.Bottom, -1, 1);
        AssertSpans(one, one.Axes.Left, 1, 3);
        var loss = new double[3, 3];
        for (int i = 0; i < 3; i++)
        {
            for (int j = 0; j < 3; j++)
            {
                loss[i, j] = 1 + i * i + j * j;
            }
        }
        // The heat map's cells reach half a cell past the outer grid points: [−1.5, 1.5]; the autoscaler drew ±2.5.
        var two = Plots.Slice(new SliceResult([SliceDirection.Random, SliceDirection.Random], alphas, alphas, loss, [1, 1], 1), "2D");
        AssertSpans(two, two.Axes.Bottom, -1.5, 1.5);
        AssertSpans(two, two.Axes.Left, -1.5, 1.5);
    }

    /// <summary>After rendering, <paramref name="axis"/> shows [min, max] and reaches past it by no more than the margin of <see cref="Plots.AxisMargin"/>.</summary>
    private static void AssertSpans(ScottPlot.Plot plot, ScottPlot.IAxis axis, double min, double max)
    {
        Plots.Svg(plot);
        double slack = Plots.AxisMargin * (max - min) * (1 + 1e-9);
        Assert.True(axis.Range.Min <= min && axis.Range.Max >= max, $"{axis.Edge} axis [{axis.Range.Min}, {axis.Range.Max}] does not show the data [{min}, {max}]");
        Assert.True(axis.Range.Min >= min - slack && axis.Range.Max <= max + slack, $"{axis.Edge} axis [{axis.Range.Min}, {axis.Range.Max}] reaches beyond the data [{min}, {max}]");
    }

    /// <summary>The labelled major ticks of <paramref name="axis"/> inside its visible range after the last render.</summary>
    private static ScottPlot.Tick[] VisibleLabels(ScottPlot.Plot plot, ScottPlot.IYAxis axis)
    {
        var range = axis.Range;
        return axis.TickGenerator.Ticks.Where(t => t.IsMajor && !string.IsNullOrEmpty(t.Label) && t.Position >= range.Min && t.Position <= range.Max).ToArray();
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
/// The report page as a person sees it: rendered by headless Chromium (Debian's chromium package), screenshot not blank,
/// and the expected headings in the rendered DOM. The test installs nothing: <c>.ci/run</c> installs chromium before the
/// tests and sets <see cref="Chromium.RequireVariable"/>, so that in CI a missing browser fails the test; elsewhere the test
/// is skipped, with the reason, where chromium is missing.
/// </summary>
public sealed class RenderedReportTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Verify_Report_Renders_In_Headless_Chromium()
    {
        string chromium = Chromium.Locate(output.WriteLine);
        var dir = Directory.CreateTempSubdirectory("landscape-report-").FullName;
        try
        {
            var data = DatasetLoader.Load("builtin:iris", TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 10 == 0));
            var (p, _) = PaperVerification.TrainedPoint(data, 24, seed: 2);
            using var model = p.ToModel();
            var report = new HtmlReport("LossLandscape report");
            report.Heading("Claims").Table(["claim", "result"], [["a check", "PASS"]]);
            LandscapeReport.Build(report, new ResidualMap(model, data), new ReportOptions(SliceGrid: 15, WalkSteps: 3));
            var dom = Render(chromium, report.Save(dir), "Claims", "Certificate", "Spectrum", "Flat and curved directions of M");
            Assert.Contains("<svg", dom);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [SkippableFact]
    public void Cross_Entropy_Report_Of_A_Cnn_Renders_In_Headless_Chromium()
    {
        string chromium = Chromium.Locate(output.WriteLine);
        var dir = Directory.CreateTempSubdirectory("landscape-report-ce-").FullName;
        try
        {
            SliceAndReportTests.CrossEntropyCnnReport(dir);
            var dom = Render(chromium, Path.Combine(dir, "report", HtmlReport.PageName),
                "Loss and gradient", "Top eigenvalues of the Hessian", "Trace of the Hessian", "Spectral density", "Loss surface");
            Assert.DoesNotContain("<h2>Certificate</h2>", dom);
            Assert.Equal(2, dom.Split("<svg").Length - 1);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>
    /// Renders <paramref name="page"/> in headless chromium as a person sees it (1366 × 900): the screenshot is not blank and
    /// the DOM has every heading of <paramref name="headings"/>; returns the DOM.
    /// </summary>
    private static string Render(string chromium, string page, params string[] headings)
    {
        var shot = Path.Combine(Path.GetDirectoryName(page)!, "shot.png");
        Chromium.Run(chromium, $"--screenshot={shot} --window-size=1366,900 file://{page}");
        using (var bitmap = SKBitmap.Decode(shot))
        {
            Assert.Equal(1366, bitmap.Width);
            Assert.True(SliceAndReportTests.DistinctColours(bitmap) > 50, "the screenshot is (nearly) blank");
        }
        var dom = Chromium.Run(chromium, $"--dump-dom file://{page}");
        foreach (var heading in headings)
        {
            Assert.Contains($"<h2>{heading}</h2>", dom);
        }
        return dom;
    }

    [Theory]
    [InlineData(true, false, null, null)]
    [InlineData(true, true, null, null)]
    [InlineData(false, false, null, "apt-get install chromium")]
    [InlineData(false, true, "LANDSCAPE_TESTS_REQUIRE_CHROMIUM", null)]
    public void Chromium_Is_Used_Or_The_Test_Skipped_With_A_Reason_Or_Failed_Where_Required(bool installed, bool required, string? failure, string? skip)
    {
        var (fail, skipped) = Chromium.WhenMissing(installed, required);
        Assert.Equal(failure is null, fail is null);
        Assert.Equal(skip is null, skipped is null);
        Assert.Contains(failure ?? "", fail ?? "");
        Assert.Contains(skip ?? "", skipped ?? "");
    }
}
