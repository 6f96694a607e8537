using System.CommandLine;
using LossLandscape.Reports;
using Spectre.Console;

namespace LossLandscape.Cli.Commands;

/// <summary>
/// <c>landscape verify [--json F]</c>: the main job. Runs every check on the embedded data and prints
/// a table of claim, setting, measured, expected and PASS/FAIL; exit code 1 if any check fails.
/// </summary>
public static class VerifyCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliContext context)
    {
        var json = CommonOptions.Json();
        var reportDir = new Option<string?>("--report") { Description = "also write DIR/index.html: the table of claims, the spectrum, a tangent-against-normal slice and the walk" };
        var command = new Command("verify", "Check the paper's claims and the engine's foundations on the embedded data, and print a PASS/FAIL table.") { json, reportDir };
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var checks = context.WithProgress("verify", progress => PaperVerification.Run(progress));
            Render(context, checks);
            if (result.GetValue(reportDir) is { } dir)
            {
                var path = context.WithProgress("report", _ => WriteReport(dir, checks, context.CommandLine));
                context.Console.MarkupLine(Markup.Escape($"wrote {path}"));
            }
            JsonOutput.Write(result.GetValue(json), w =>
            {
                w.WriteBoolean("pass", checks.All(c => c.Pass));
                w.WriteStartArray("claims");
                foreach (var c in checks)
                {
                    w.WriteStartObject();
                    w.WriteString("claim", c.Claim);
                    w.WriteString("setting", c.Setting);
                    w.WriteString("measured", c.Measured);
                    w.WriteString("expected", c.Expected);
                    w.WriteBoolean("pass", c.Pass);
                    w.WriteNumber("seconds", c.Seconds);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            });
            return checks.All(c => c.Pass) ? LandscapeApp.Success : LandscapeApp.Failure;
        });
        return command;
    }

    /// <summary>
    /// The verify page: the table of claims, then the figures at a point of M reached by Gauss–Newton on
    /// iris (every fifth row, one-hot ℓ = 3, width 40; n = 323, ℓd = 90), small enough for the dense spectrum.
    /// </summary>
    public static string WriteReport(string directory, IReadOnlyList<ClaimCheck> checks, string commandLine)
    {
        var report = new HtmlReport("LossLandscape: the claims of Cooper, “The loss landscape of overparameterized neural networks”");
        report.Paragraph($"{checks.Count(c => c.Pass)} of {checks.Count} checks passed. Every number below was measured by this run.");
        report.Heading("Claims");
        report.Table(["claim", "setting", "measured", "expected", "result"], checks.Select(c => (IReadOnlyList<string>)[c.Claim, c.Setting, c.Measured, c.Expected, c.Pass ? "PASS" : "FAIL"]));
        report.Heading("Command").Code(commandLine);
        var data = LossLandscape.Data.DatasetLoader.Load("builtin:iris", LossLandscape.Data.TargetSpec.Classes("species")).Subset(Enumerable.Range(0, 150).Where(i => i % 5 == 0));
        var (point, projection) = PaperVerification.TrainedPoint(data, 40, seed: 1);
        report.Heading("Settings of the figures").Table(["setting", "value"],
        [
            ["data", "builtin:iris, every fifth row (d = 30), species one-hot (ℓ = 3), inputs standardized in the model"],
            ["network", $"4-40-3 smoolu MLP, n = {point.Network.ParameterCount}"],
            ["point", $"He initialization (seed 1), then {projection.Steps} Gauss–Newton steps onto M (max|H| {projection.FinalMaxResidual:G3})"],
        ]);
        using var model = point.ToModel();
        LandscapeReport.Build(report, new Geometry.ResidualMap(model, data), new ReportOptions());
        return report.Save(directory);
    }

    /// <summary>Prints the table of checks.</summary>
    public static void Render(CliContext context, IReadOnlyList<ClaimCheck> checks)
    {
        var table = new Table().AddColumns("claim", "setting", "measured", "expected", "result", "s");
        foreach (var c in checks)
        {
            table.AddRow(Markup.Escape(c.Claim), Markup.Escape(c.Setting), Markup.Escape(c.Measured), Markup.Escape(c.Expected),
                c.Pass ? "[green]PASS[/]" : "[red]FAIL[/]", c.Seconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
        }
        context.Console.Write(table);
        int failed = checks.Count(c => !c.Pass);
        context.Console.MarkupLine(failed == 0 ? $"[green]all {checks.Count} checks passed[/]" : $"[red]{failed} of {checks.Count} checks failed[/]");
    }
}
