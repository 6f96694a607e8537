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
        var command = new Command("verify", "Check the paper's claims and the engine's foundations on the embedded data, and print a PASS/FAIL table.") { json };
        command.SetAction(result =>
        {
            LandscapeApp.Initialize();
            var checks = context.WithProgress("verify", progress => PaperVerification.Run(progress));
            Render(context, checks);
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
