using System.Globalization;
using System.Text.RegularExpressions;

namespace LossLandscape.Tests;

/// <summary>Compares two report pages by their table cells, as a reader sees them.</summary>
internal static partial class ReportPages
{
    [GeneratedRegex("<td>([^<]*)</td>")]
    private static partial Regex Cell();

    [GeneratedRegex(@"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")]
    private static partial Regex Number();

    /// <summary>
    /// The cells of <paramref name="expected"/> and <paramref name="actual"/> (index.html paths) hold the same text and the same
    /// numbers: timings (a number followed by " s") are skipped; a number matches within 1e-10·max(1, |x|) (the issue's bound),
    /// or within the rounding of the 4 significant digits the page prints, or when both are below 1e-12·max(1, the cell's
    /// largest number) (rounding noise under a rank tolerance, such as σ_rank+1 at a rank-deficient point).
    /// </summary>
    public static void AssertSameCells(string expected, string actual)
    {
        var a = Cells(expected);
        var b = Cells(actual);
        Assert.True(a.Length > 10, $"the page has {a.Length} table cells");
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.Equal(Number().Replace(a[i], "#"), Number().Replace(b[i], "#"));
            var x = Numbers(a[i]);
            var y = Numbers(b[i]);
            double floor = 1e-12 * Math.Max(1.0, x.Select(Math.Abs).DefaultIfEmpty(0).Max());
            for (int k = 0; k < x.Length; k++)
            {
                double diff = Math.Abs(x[k] - y[k]);
                bool close = diff <= 1e-10 * Math.Max(1.0, Math.Abs(x[k])) || diff <= 5e-4 * Math.Abs(x[k]) || (Math.Abs(x[k]) <= floor && Math.Abs(y[k]) <= floor);
                Assert.True(close, $"cell {i} ({a[i]} | {b[i]}): {x[k]:R} against {y[k]:R}");
            }
        }
    }

    private static string[] Cells(string page) =>
        Cell().Matches(File.ReadAllText(page)).Select(m => Regex.Replace(m.Groups[1].Value, @"[0-9.]+ s\b", "T")).ToArray();

    private static double[] Numbers(string cell) =>
        Number().Matches(cell).Select(m => double.Parse(m.Value, CultureInfo.InvariantCulture)).ToArray();
}
