using System.Net;
using System.Text;

namespace LossLandscape.Reports;

/// <summary>
/// One self-contained HTML page: inline CSS and inline SVG figures, no scripts, no network access.
/// Sections are added in order; <see cref="Render"/> returns the page.
/// </summary>
public sealed class HtmlReport(string title)
{
    private readonly StringBuilder _body = new();

    /// <summary>The page title (also the first heading).</summary>
    public string Title { get; } = title;

    /// <summary>Adds a section heading.</summary>
    public HtmlReport Heading(string text)
    {
        _body.Append("<h2>").Append(E(text)).Append("</h2>\n");
        return this;
    }

    /// <summary>Adds a paragraph of text.</summary>
    public HtmlReport Paragraph(string text)
    {
        _body.Append("<p>").Append(E(text)).Append("</p>\n");
        return this;
    }

    /// <summary>Adds a table; a cell equal to PASS or FAIL is coloured.</summary>
    public HtmlReport Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        _body.Append("<table><thead><tr>");
        foreach (var h in headers)
        {
            _body.Append("<th>").Append(E(h)).Append("</th>");
        }
        _body.Append("</tr></thead><tbody>\n");
        foreach (var row in rows)
        {
            _body.Append("<tr>");
            foreach (var cell in row)
            {
                string cls = cell switch { "PASS" => " class=\"pass\"", "FAIL" => " class=\"fail\"", _ => "" };
                _body.Append("<td").Append(cls).Append('>').Append(E(cell)).Append("</td>");
            }
            _body.Append("</tr>\n");
        }
        _body.Append("</tbody></table>\n");
        return this;
    }

    /// <summary>Adds a figure: inline SVG with a caption.</summary>
    public HtmlReport Figure(string svg, string caption)
    {
        ArgumentNullException.ThrowIfNull(svg);
        _body.Append("<figure>").Append(svg).Append("<figcaption>").Append(E(caption)).Append("</figcaption></figure>\n");
        return this;
    }

    /// <summary>Adds preformatted text (a command line).</summary>
    public HtmlReport Code(string text)
    {
        _body.Append("<pre><code>").Append(E(text)).Append("</code></pre>\n");
        return this;
    }

    /// <summary>The page.</summary>
    public string Render() => $$"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{E(Title)}}</title>
        <style>
        body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px; padding: 1.2rem 1.6rem; color: #1d2330; line-height: 1.45; }
        h1 { font-size: 1.6rem; margin: 0.2rem 0 0.4rem; }
        h2 { font-size: 1.2rem; margin-top: 1.8rem; border-bottom: 1px solid #d8dce6; padding-bottom: 0.2rem; }
        table { border-collapse: collapse; width: 100%; font-size: 0.86rem; margin: 0.6rem 0; }
        th, td { border: 1px solid #d8dce6; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
        th { background: #f1f3f8; }
        td.pass { color: #0a7a2f; font-weight: 600; }
        td.fail { color: #b3261e; font-weight: 600; }
        figure { margin: 0.8rem 0; display: inline-block; width: calc(50% - 1rem); min-width: 420px; vertical-align: top; }
        figure svg { width: 100%; height: auto; }
        figcaption { font-size: 0.85rem; color: #4a5163; }
        pre { background: #f6f7fb; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
        @media (max-width: 900px) { figure { width: 100%; min-width: 0; } }
        </style>
        </head>
        <body>
        <h1>{{E(Title)}}</h1>
        {{_body}}
        </body>
        </html>
        """;

    /// <summary>The file <see cref="Save"/> writes in its directory.</summary>
    public const string PageName = "index.html";

    /// <summary>Writes DIR/<see cref="PageName"/> (creating DIR) and returns its path.</summary>
    public string Save(string directory)
    {
        var path = Path.Combine(directory, PageName);
        Engine.AtomicFile.WriteAllText(path, Render());
        return path;
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
