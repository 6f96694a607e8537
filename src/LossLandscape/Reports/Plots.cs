using LossLandscape.Engine;
using LossLandscape.Paths;
using ScottPlot;

using LossLandscape.Curvature;

namespace LossLandscape.Reports;

/// <summary>
/// The project's figures, drawn with ScottPlot 5: spectra on a symmetric log axis, the SLQ density on a
/// log axis, the singular values of J against the rank tolerance, the walk on M, training losses and
/// 1D/2D loss slices. Each method returns a <see cref="Plot"/>; <see cref="Svg"/> and <see cref="Save"/> render it.
/// </summary>
public static class Plots
{
    /// <summary>Default figure size in pixels.</summary>
    public const int Width = 720, Height = 420;

    /// <summary>
    /// Every legend of the project's figures: in a panel below the data area (ScottPlot's <see cref="Plot.ShowLegend(Edge)"/>),
    /// so no legend box covers plotted data, whatever its shape.
    /// </summary>
    internal static void LegendOutside(Plot plot) => plot.ShowLegend(Edge.Bottom);

    /// <summary>The SVG text of a plot (for inline embedding).</summary>
    public static string Svg(Plot plot, int width = Width, int height = Height)
    {
        ArgumentNullException.ThrowIfNull(plot);
        var svg = plot.GetSvgXml(width, height);
        int start = svg.IndexOf("<svg", StringComparison.Ordinal);
        svg = start > 0 ? svg[start..] : svg;
        // A viewBox lets the page scale the figure to its column instead of clipping it.
        return svg.StartsWith("<svg", StringComparison.Ordinal) && !svg.Contains("viewBox", StringComparison.Ordinal)
            ? $"<svg viewBox=\"0 0 {width} {height}\" preserveAspectRatio=\"xMidYMid meet\"" + svg[4..]
            : svg;
    }

    /// <summary>Saves as .png or .svg by the file's extension; anything else is refused.</summary>
    public static void Save(Plot plot, string path, int width = Width, int height = Height)
    {
        ArgumentNullException.ThrowIfNull(plot);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".png" or ".svg"))
        {
            throw new ArgumentException($"{path}: the plot format is chosen by the extension, .png or .svg");
        }
        // Rendered to bytes here, then written beside the target and renamed over it (AtomicFile).
        byte[] bytes = ext == ".png" ? plot.GetImageBytes(width, height, ImageFormat.Png) : System.Text.Encoding.UTF8.GetBytes(Svg(plot, width, height));
        Engine.AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>
    /// Eigenvalues in descending order against their index, on the symmetric log axis
    /// y = sign(λ)·log₁₀(1 + |λ|/τ) with τ the zero tolerance, so the positive outliers, the bulk at 0 and
    /// small negative values are all visible; a line marks index ℓd when given.
    /// </summary>
    public static Plot Spectrum(IReadOnlyList<double> eigenvalues, double zeroTolerance, int? constraints, string title)
    {
        ArgumentNullException.ThrowIfNull(eigenvalues);
        RequireFinite(eigenvalues, title);
        var plot = new Plot();
        var sorted = eigenvalues.OrderByDescending(v => v).ToArray();
        double tau = zeroTolerance > 0 && double.IsFinite(zeroTolerance) ? zeroTolerance : 1e-12;
        double Sym(double v) => Math.Sign(v) * Math.Log10(1 + Math.Abs(v) / tau);
        var xs = Enumerable.Range(1, sorted.Length).Select(i => (double)i).ToArray();
        var ys = sorted.Select(Sym).ToArray();
        var sc = plot.Add.Scatter(xs, ys);
        sc.LineWidth = 0;
        sc.MarkerSize = 3;
        plot.Add.HorizontalLine(0, 1, Colors.Gray, LinePattern.Dotted);
        // The line after index ℓd only where ℓd lies among the values drawn: off M, or on the σ(J) route, fewer than ℓd
        // values may be drawn, and a line beyond them would stretch the axis past the data (to 18 000 for 2 410 values).
        bool line = constraints is { } m && m >= 1 && m < sorted.Length;
        if (line)
        {
            var marker = plot.Add.VerticalLine(constraints!.Value + 0.5, 1, Colors.Red, LinePattern.Dashed);
            marker.LegendText = $"l·d = {constraints.Value}";
        }
        plot.Axes.Left.TickGenerator = SymLogTicks(ys.DefaultIfEmpty(0).Min(), ys.DefaultIfEmpty(0).Max(), tau);
        Span(plot, plot.Axes.Bottom, xs, title);
        Span(plot, plot.Axes.Left, ys.Append(0), title);
        plot.Title(title);
        plot.XLabel("index (descending)");
        plot.YLabel("eigenvalue λ (symmetric log)");
        if (line)
        {
            LegendOutside(plot);
        }
        return plot;
    }

    /// <summary>The spectral density from stochastic Lanczos quadrature, on a log₁₀ axis (floored at 1e−12 of the peak).</summary>
    public static Plot Density(IReadOnlyList<double> grid, IReadOnlyList<double> density, string title)
    {
        ArgumentNullException.ThrowIfNull(grid);
        ArgumentNullException.ThrowIfNull(density);
        RequireFinite(grid.Concat(density), title);
        var plot = new Plot();
        double peak = density.DefaultIfEmpty(1).Max();
        var ys = density.Select(v => Math.Log10(Math.Max(v, peak * 1e-12))).ToArray();
        var sc = plot.Add.Scatter(grid.ToArray(), ys);
        sc.MarkerSize = 0;
        LogAxis(plot, plot.Axes.Left, ys);
        Span(plot, plot.Axes.Bottom, grid, title);
        plot.Title(title);
        plot.XLabel("eigenvalue");
        plot.YLabel("density (log scale)");
        return plot;
    }

    /// <summary>Singular values of J (descending, log axis) with the rank tolerance as a line.</summary>
    public static Plot SingularValues(IReadOnlyList<double> sigma, double tolerance, int rank, string title)
    {
        ArgumentNullException.ThrowIfNull(sigma);
        RequireFinite(sigma.Append(tolerance), title);
        var plot = new Plot();
        double floor = Math.Max(tolerance * 1e-3, sigma.Where(s => s > 0).DefaultIfEmpty(1).Min() / 10);
        var xs = Enumerable.Range(1, sigma.Count).Select(i => (double)i).ToArray();
        var ys = sigma.Select(s => Math.Log10(Math.Max(s, floor))).ToArray();
        var sc = plot.Add.Scatter(xs, ys);
        sc.LineWidth = 0;
        sc.MarkerSize = 3;
        sc.LegendText = "σᵢ(J)";
        var tol = plot.Add.HorizontalLine(Math.Log10(tolerance), 1.5f, Colors.Red, LinePattern.Dashed);
        tol.LegendText = $"rank tolerance {tolerance:G3} (rank {rank})";
        LogAxis(plot, plot.Axes.Left, ys.Append(Math.Log10(tolerance)));
        Span(plot, plot.Axes.Bottom, xs, title);
        plot.Title(title);
        plot.XLabel("index");
        plot.YLabel("σ (log scale)");
        LegendOutside(plot);
        return plot;
    }

    /// <summary>
    /// The walk: max|H| (left, log) and the distance from the start (right) against the step. max|H| = 0 (an exact zero)
    /// is drawn at <see cref="LogFloor"/>.
    /// </summary>
    public static Plot Walk(IReadOnlyList<WalkStep> steps, string title)
    {
        ArgumentNullException.ThrowIfNull(steps);
        RequireFinite(steps.SelectMany(s => new[] { s.MaxAbsResidual, s.Displacement }), title);
        var plot = new Plot();
        var xs = steps.Select(s => (double)s.Step).ToArray();
        var logResidual = steps.Select(s => Math.Log10(Math.Max(s.MaxAbsResidual, LogFloor))).ToArray();
        var residual = plot.Add.Scatter(xs, logResidual);
        residual.LegendText = "max|H| (left, log)";
        var distance = plot.Add.Scatter(xs, steps.Select(s => s.Displacement).ToArray());
        distance.LegendText = "‖p − p₀‖ (right)";
        distance.Axes.YAxis = plot.Axes.Right;
        LogAxis(plot, plot.Axes.Left, logResidual);
        Span(plot, plot.Axes.Bottom, xs, title);
        Span(plot, plot.Axes.Right, steps.Select(s => s.Displacement), title);
        plot.Axes.Right.Label.Text = "distance from the start";
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("max |H| (log scale)");
        LegendOutside(plot);
        return plot;
    }

    /// <summary>
    /// Paths between minima: one quantity (L, or max|H| with <paramref name="residual"/>) against t on a log axis, one line
    /// per method, the endpoints t = 0 and t = 1 marked. A value of exactly 0 is drawn at <see cref="LogFloor"/>; a
    /// non-finite one is left out.
    /// </summary>
    public static Plot PathProfiles(IReadOnlyList<PathProfile> profiles, string title, bool residual = false)
    {
        ArgumentNullException.ThrowIfNull(profiles);
        var plot = new Plot();
        var all = new List<double>();
        foreach (var profile in profiles)
        {
            var points = profile.Points.Where(p => double.IsFinite(residual ? p.MaxAbsResidual : p.Loss)).ToArray();
            if (points.Length == 0)
            {
                continue;
            }
            var xs = points.Select(p => p.T).ToArray();
            var ys = points.Select(p => Math.Log10(Math.Max(residual ? p.MaxAbsResidual : p.Loss, LogFloor))).ToArray();
            all.AddRange(ys);
            var line = plot.Add.Scatter(xs, ys);
            line.MarkerSize = 0;
            line.LegendText = profile.Method;
            // The endpoints: where the path starts (A) and where it ends (B, or where it stopped).
            var ends = plot.Add.Scatter(new[] { xs[0], xs[^1] }, new[] { ys[0], ys[^1] });
            ends.LineWidth = 0;
            ends.MarkerSize = 8;
            ends.Color = line.Color;
        }
        LogAxis(plot, plot.Axes.Left, all);
        plot.Axes.SetLimitsX(-0.02, 1.02);
        plot.Title(title);
        plot.XLabel("t (0: A, 1: B)");
        plot.YLabel(residual ? "max |H| (log scale)" : "loss L (log scale)");
        LegendOutside(plot);
        return plot;
    }

    /// <summary>
    /// Each approximation's top-K eigenvalues against the exact ones (<see cref="ApproximationReport"/>): one series of K points
    /// per kind, x the exact i-th largest, y the approximation's, and the diagonal y = x on which they agree.
    /// </summary>
    public static Plot Approximations(ApproximationReport report, string title)
    {
        ArgumentNullException.ThrowIfNull(report);
        RequireFinite(report.Approximations.SelectMany(a => a.TopEigenvalues.Concat(a.ExactTopEigenvalues)), title);
        var plot = new Plot();
        var all = report.Approximations.SelectMany(a => a.TopEigenvalues.Concat(a.ExactTopEigenvalues)).ToArray();
        if (all.Length > 0)
        {
            double lo = Math.Min(0, all.Min()), hi = all.Max();
            var diagonal = plot.Add.Scatter(new[] { lo, hi }, new[] { lo, hi });
            diagonal.MarkerSize = 0;
            diagonal.LegendText = "exact";
        }
        foreach (var a in report.Approximations)
        {
            var points = plot.Add.Scatter(a.ExactTopEigenvalues.ToArray(), a.TopEigenvalues.ToArray());
            points.LineWidth = 0;
            points.MarkerSize = 8;
            points.LegendText = a.Kind;
        }
        plot.Title(title);
        plot.XLabel($"exact eigenvalue ({report.Against})");
        plot.YLabel("approximate eigenvalue");
        LegendOutside(plot);
        return plot;
    }

    /// <summary>
    /// A loss history on a log axis against the step (a loss of exactly 0 is drawn at <see cref="LogFloor"/>; a non-finite
    /// one, which <c>train --json</c> writes as null, is left out).
    /// </summary>
    /// <param name="losses">The recorded losses.</param>
    /// <param name="title">The figure's title.</param>
    /// <param name="steps">The step of each loss (<see cref="Training.TrainingResult.LossSteps"/>: L evaluated every K steps); default null: 0, 1, 2, ….</param>
    public static Plot LossHistory(IReadOnlyList<double> losses, string title, IReadOnlyList<int>? steps = null)
    {
        ArgumentNullException.ThrowIfNull(losses);
        if (steps is not null && steps.Count != losses.Count)
        {
            throw new ArgumentException($"{steps.Count} steps for {losses.Count} losses", nameof(steps));
        }
        var plot = new Plot();
        var xs = Enumerable.Range(0, losses.Count).Select(i => (double)(steps?[i] ?? i)).ToArray();
        var ys = losses.Select(v => Math.Log10(Math.Max(v, LogFloor))).ToArray();
        var sc = plot.Add.Scatter(xs, ys);
        sc.MarkerSize = 2;
        LogAxis(plot, plot.Axes.Left, ys);
        Span(plot, plot.Axes.Bottom, xs, title);
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("loss (log scale)");
        return plot;
    }

    /// <summary>A 1D slice as a curve, or a 2D slice as a heat map of log₁₀(L + floor) with contour lines, a colour bar and the point marked.</summary>
    /// <remarks>A slice from <see cref="LossSlice.Compute"/> has a finite loss at every grid point (it refuses otherwise, naming the point).</remarks>
    public static Plot Slice(SliceResult slice, string title)
    {
        ArgumentNullException.ThrowIfNull(slice);
        RequireFinite(slice.Loss.Cast<double>().Concat(slice.Alphas).Concat(slice.Betas).Append(slice.CenterLoss), title);
        var plot = new Plot();
        string Name(int k) => $"{slice.Directions[k].ToString().ToLowerInvariant()} direction (‖d‖ = {slice.DirectionNorms[k]:G3})";
        // Colour by log₁₀(L + floor), floor = 1e−8·max L, so a valley of L ≈ 0 shows as a band, not a dot.
        double floor = Math.Max(slice.Loss.Cast<double>().DefaultIfEmpty(1).Max() * 1e-8, 1e-300);
        if (slice.Betas.Length == 0)
        {
            var ys = Enumerable.Range(0, slice.Alphas.Length).Select(i => slice.Loss[i, 0]).ToArray();
            plot.Add.Scatter(slice.Alphas, ys).MarkerSize = 2;
            plot.Add.Marker(0, slice.CenterLoss, MarkerShape.FilledCircle, 8, Colors.Red);
            Span(plot, plot.Axes.Bottom, slice.Alphas.Append(0), title);
            Span(plot, plot.Axes.Left, ys.Append(slice.CenterLoss), title);
            plot.XLabel(Name(0));
            plot.YLabel("loss L");
        }
        else
        {
            int g = slice.Alphas.Length;
            var cells = new Coordinates3d[g, g];
            var intensity = new double[g, g];
            for (int i = 0; i < g; i++)
            {
                for (int j = 0; j < g; j++)
                {
                    double z = Math.Log10(slice.Loss[i, j] + floor);
                    // Heat map rows run top to bottom: row = β from high to low, column = α.
                    intensity[g - 1 - j, i] = z;
                    cells[j, i] = new Coordinates3d(slice.Alphas[i], slice.Betas[j], z);
                }
            }
            var heat = plot.Add.Heatmap(intensity);
            heat.Colormap = new ScottPlot.Colormaps.Viridis();
            // Half a cell on each side (halved before subtracting, so that a range near float64's maximum does not overflow).
            double half = slice.Alphas[1] / 2 - slice.Alphas[0] / 2;
            var extent = new CoordinateRect(slice.Alphas[0] - half, slice.Alphas[^1] + half, slice.Betas[0] - half, slice.Betas[^1] + half);
            heat.Extent = extent;
            var contours = plot.Add.ContourLines(cells, 10);
            contours.LineColor = Colors.White.WithAlpha(0.6);
            contours.LabelStyle.IsVisible = false;
            var bar = plot.Add.ColorBar(heat);
            bar.Label = "log₁₀(L + " + floor.ToString("G2", System.Globalization.CultureInfo.InvariantCulture) + ")";
            plot.Add.Marker(0, 0, MarkerShape.FilledCircle, 9, Colors.Red);
            // The axes span the heat map's cells, not ScottPlot's autoscale of the heat map, contours and colour bar together.
            Span(plot, plot.Axes.Bottom, [extent.Left, extent.Right], title, margin: 0);
            Span(plot, plot.Axes.Left, [extent.Bottom, extent.Top], title, margin: 0);
            plot.XLabel(Name(0));
            plot.YLabel(Name(1));
        }
        plot.Title(title);
        return plot;
    }

    /// <summary>
    /// The margin of a linear axis on each side of its data, as a fraction of the data's span: 5 %, ScottPlot's own
    /// autoscale margin, so a marker at the edge of the data is not cut in half.
    /// </summary>
    internal const double AxisMargin = 0.05;

    /// <summary>
    /// Sets <paramref name="axis"/> to span <paramref name="values"/> with <paramref name="margin"/> of their span on each
    /// side (a single value: that fraction of its magnitude, or ±1 around 0). Every linear axis of the project's figures is
    /// set this way, from the data it draws, so no axis follows ScottPlot's autoscaler, which stretches an axis to reach a
    /// marker line outside the data and throws on a non-finite limit.
    /// </summary>
    /// <returns>The limits set.</returns>
    /// <exception cref="LandscapeInputException">A value is not finite, or the span with its margins exceeds float64's range.</exception>
    internal static (double Min, double Max) Span(Plot plot, IAxis axis, IEnumerable<double> values, string figure, double margin = AxisMargin)
    {
        var v = values.ToArray();
        RequireFinite(v, figure);
        double low = v.DefaultIfEmpty(0).Min(), high = v.DefaultIfEmpty(1).Max();
        double pad = high > low ? margin * (high - low) : low != 0 ? Math.Max(margin, AxisMargin) * Math.Abs(low) : 1;
        double min = low - pad, max = high + pad;
        if (!double.IsFinite(max - min))
        {
            throw new LandscapeInputException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"the figure '{figure}' would span [{low:G4}, {high:G4}] on one axis, wider than float64 can draw; use a smaller range"));
        }
        switch (axis)
        {
            case IXAxis x:
                plot.Axes.SetLimitsX(min, max, x);
                break;
            case IYAxis y:
                plot.Axes.SetLimitsY(min, max, y);
                break;
        }
        return (min, max);
    }

    /// <summary>
    /// Refuses a figure with a value that is not finite, naming the figure (<see cref="NonFinite.RequireAll"/>): ∞ or NaN
    /// has no place on an axis or a colour scale, and ScottPlot throws on one. The computations that feed the figures
    /// refuse non-finite results themselves; this keeps a plot library exception from ever reaching the user.
    /// </summary>
    /// <exception cref="LandscapeInputException">A value is NaN or ±∞.</exception>
    internal static void RequireFinite(IEnumerable<double> values, string figure) =>
        NonFinite.RequireAll(values as IReadOnlyList<double> ?? values.ToArray(), $"a value of the figure '{figure}'");

    /// <summary>
    /// The value drawn for an exact 0 on a log axis: 1e−300, just above the smallest normal float64 (2.2e−308), so that
    /// log₁₀ stays finite; a point there says "zero", and the axis labels it like any other decade.
    /// </summary>
    public const double LogFloor = 1e-300;

    /// <summary>
    /// The most labelled ticks on a log axis: a figure <see cref="Height"/> = 420 px tall has a data area of about 300 px,
    /// so 8 labels are at least 37 px apart, three times the height of a 12 px tick label.
    /// </summary>
    public const int MaxLogLabels = 8;

    /// <summary>The label steps of a log axis in decades: 1, 2, 5, 10, 20, 50, … (the 1-2-5 series that keeps labels round).</summary>
    private static IEnumerable<int> DecadeSteps()
    {
        for (int scale = 1; ; scale *= 10)
        {
            yield return scale;
            yield return 2 * scale;
            yield return 5 * scale;
        }
    }

    /// <summary>
    /// Makes <paramref name="axis"/> a labelled log₁₀ axis for data whose log₁₀ values are <paramref name="log10Values"/>:
    /// its limits are the whole decades around the data (at least one decade, so there are always two labelled ticks),
    /// the decades that are multiples of s are labelled 1e{k}, s the smallest step of 1, 2, 5, 10, 20, … that gives at
    /// most <see cref="MaxLogLabels"/> labels, and an axis one or two decades tall also gets 2·10ᵏ and 5·10ᵏ labels.
    /// </summary>
    /// <returns>The axis limits (in decades).</returns>
    internal static (double Bottom, double Top) LogAxis(Plot plot, IYAxis axis, IEnumerable<double> log10Values)
    {
        var finite = log10Values.Where(double.IsFinite).ToArray();
        double low = finite.DefaultIfEmpty(0).Min(), high = finite.DefaultIfEmpty(0).Max();
        // A 2 % margin of a decade keeps a marker at an exact decade from being cut in half by the axis edge.
        const double Margin = 0.02;
        int bottom = (int)Math.Floor(low - Margin), top = (int)Math.Ceiling(high + Margin);
        // Labels at the multiples of the step (so that which decades are labelled does not depend on where the data
        // start), the smallest step with at most MaxLogLabels of them; a step s is taken only when s/2.5 gave more than
        // MaxLogLabels, i.e. the axis spans ≥ 2.8·s decades, so there are always at least two.
        static int Labels(int bottom, int top, int step) => (int)(Math.Floor(top / (double)step) - Math.Ceiling(bottom / (double)step)) + 1;
        int step = DecadeSteps().First(s => Labels(bottom, top, s) <= MaxLogLabels);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int k = bottom; k <= top; k++)
        {
            if (k % step == 0)
            {
                ticks.AddMajor(k, $"1e{k}");
            }
            else
            {
                ticks.AddMinor(k);
            }
            if (top - bottom <= 2 && k < top)
            {
                ticks.AddMajor(k + Math.Log10(2), $"2e{k}");
                ticks.AddMajor(k + Math.Log10(5), $"5e{k}");
            }
        }
        axis.TickGenerator = ticks;
        plot.Axes.SetLimitsY(bottom, top, axis);
        return (bottom, top);
    }

    /// <summary>
    /// Ticks of the symmetric log axis y = sign(λ)·log₁₀(1 + |λ|/τ): 0, and ±τ·10ᵏ at the multiples k of a step of 1, 2, 5,
    /// 10, … decades, the smallest step that puts at most <see cref="MaxLogLabels"/> labels on [min, max]. τ itself
    /// (k = 0, at y = ±0.3) is labelled only when nothing else would be (all |λ| &lt; 10τ): on a taller axis it would sit
    /// on top of the label 0.
    /// </summary>
    private static ScottPlot.TickGenerators.NumericManual SymLogTicks(double min, double max, double tau)
    {
        double Y(int k) => Math.Log10(1 + Math.Pow(10, k));
        // The decades k ≥ 1 whose ticks fall inside [min, max] on either side of 0.
        int Count(int step, double bound) => Enumerable.Range(1, 320).Count(k => k % step == 0 && Y(k) <= bound);
        int Labels(int step) => 1 + Count(step, Math.Max(max, 0)) + Count(step, Math.Max(-min, 0));
        int step = DecadeSteps().First(s => Labels(s) <= MaxLogLabels);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        ticks.AddMajor(0, "0");
        // An axis within ±τ·10 (|y| < Y(1)) would have no label but 0: there ±τ labels the scale, with room to spare.
        int firstK = Math.Max(Math.Abs(min), Math.Abs(max)) < Y(1) ? 0 : 1;
        for (int k = firstK; k <= 320 && Y(k) <= Math.Max(Math.Abs(min), Math.Abs(max)) + 1; k++)
        {
            if (k % step == 0)
            {
                string label = (tau * Math.Pow(10, k)).ToString("0.#e+0", System.Globalization.CultureInfo.InvariantCulture);
                ticks.AddMajor(Y(k), label);
                ticks.AddMajor(-Y(k), "−" + label);
            }
            else
            {
                ticks.AddMinor(Y(k));
                ticks.AddMinor(-Y(k));
            }
        }
        return ticks;
    }
}
